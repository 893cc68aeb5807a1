/* The caller's scripts' text, from the same catalogue as the page (appliance/i18n.py): the
   page carries its language's messages as JSON (#evr-messages, caller/base.html), and
   window.evrGettext looks one up and fills its %(name)s placeholders. A message the
   catalogue lacks shows in English, the source; the tests see that none does. */
"use strict";

(function () {
  const data = document.getElementById("evr-messages");
  let messages = {};
  try {
    messages = data ? JSON.parse(data.textContent) : {};
  } catch (error) {
    messages = {};
  }
  window.evrGettext = function (message, values) {
    const text = Object.prototype.hasOwnProperty.call(messages, message) ? messages[message] : message;
    if (!values) return text;
    return text.replace(/%\((\w+)\)s/g, (all, name) => (name in values ? String(values[name]) : all));
  };
})();
