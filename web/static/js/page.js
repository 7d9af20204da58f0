// Plain content pages (help, privacy, terms): only the shared behaviour.
import "./lib/common.js";
