// A link from another site into orbitd's /join (the rendezvous's invite page, its invite
// after "#") arrives without the login cookie, which is SameSite=Strict. Followed again from
// here it is a same-site navigation, which carries the cookie: the join page then shows the
// invite, or, with no login, the page that says how to log in. Public: it reveals nothing.
location.replace(`/join?same-site=1${location.hash}`);
