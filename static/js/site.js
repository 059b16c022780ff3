// Behaviour every page may use, declared in the markup instead of inline handlers (the
// Content-Security-Policy runs no onclick=/onsubmit= code):
//   <form data-confirm="Really?">     asks before submitting; Cancel keeps the page as it is
//   <select data-autosubmit>          submits its form when the choice changes
//   <details class="navgroup">        one navigation menu open at a time; a click elsewhere closes it
// Listeners sit on the document, so forms that htmx swaps in later work too.
(function () {
  "use strict";
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
