// Behaviour every page may use, declared in the markup instead of inline handlers (the
// Content-Security-Policy runs no onclick=/onsubmit= code):
//   <form data-confirm="Really?">     asks before submitting; Cancel keeps the page as it is
//   <select data-autosubmit>          submits its form when the choice changes
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
})();
