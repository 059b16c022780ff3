// Behaviour every page may use, declared in the markup instead of inline handlers (the
// Content-Security-Policy runs no onclick=/onsubmit= code):
//   <form data-confirm="Really?">     asks before submitting; Cancel keeps the page as it is
//   <select data-autosubmit>          submits its form when the choice changes
//   <details class="navgroup">        one navigation menu open at a time; a click elsewhere closes it
// It also tells the server the browser's time zone: the `tz` cookie, which pages from the next one
// on show their times in (rebench_site/time_zones.py), unless the user picked a zone of their own.
// Listeners sit on the document, so forms that htmx swaps in later work too.
(function () {
  "use strict";
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const sent = document.cookie.split("; ").find(function (c) { return c.indexOf("tz=") === 0; });
    // IANA names only ("Europe/Berlin", "Etc/GMT+5"): nothing that would need quoting in a cookie.
    if (zone && /^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone) && (!sent || sent.slice(3) !== zone)) {
      const secure = window.location.protocol === "https:" ? "; Secure" : "";
      document.cookie = "tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax" + secure;
    }
  } catch (error) {
    // No Intl time zone in this browser: pages stay on the profile's zone or the site's.
  }
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  }, true);
  document.addEventListener("change", function (event) {
    const field = event.target;
    if (!(field instanceof Element) || !field.hasAttribute("data-autosubmit") || !field.form) return;
    if (typeof field.form.requestSubmit === "function") field.form.requestSubmit();
    else field.form.submit();
  });
  document.addEventListener("click", function (event) {
    const inside = event.target instanceof Element ? event.target.closest("details.navgroup") : null;
    document.querySelectorAll("details.navgroup[open]").forEach(function (group) {
      if (group !== inside) group.removeAttribute("open");
    });
  });
})();
