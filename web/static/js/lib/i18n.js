// Translations for scripts: the page embeds its catalog sections in #i18n.
const catalog = JSON.parse(document.getElementById("i18n")?.textContent || "{}");

/** The text at a dotted key ("session.chat.send"), with {name} placeholders filled in. */
export function t(key, values = {}) {
  let node = catalog;
  for (const part of key.split(".")) {
    node = node?.[part];
  }
  if (typeof node !== "string") {
    console.warn(`missing translation: ${key}`);
    return key;
  }
  return node.replace(/\{(\w+)\}/g, (match, name) => (name in values ? String(values[name]) : match));
}

export const language = document.documentElement.lang || "en";
