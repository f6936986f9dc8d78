/* ssehub DOM helpers for the chat demo and the widget, served after loader.js
 * and added to its namespace. Text goes in as text, never HTML. ECMAScript 3. */
(function (window, document) {
  "use strict";

  var ssehub = window.ssehub;

  function on(node, type, handler) {
    if (node.addEventListener) {
      node.addEventListener(type, handler, false);
    } else {
      node.attachEvent("on" + type, handler);
    }
  }

  // `handler` runs instead of the browser's submit.
  function onSubmit(form, handler) {
    on(form, "submit", function (event) {
      if (event.preventDefault) { event.preventDefault(); } else { event.returnValue = false; }
      handler();
    });
  }

  function clear(node) {
    while (node.firstChild) {
      node.removeChild(node.firstChild);
    }
    return node;
  }

  function setText(node, text) {
    clear(node).appendChild(document.createTextNode(text));
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) {
      node.appendChild(document.createTextNode(text));
    }
    return node;
  }

  // Local "22:30" of when the event with id "<ms>-<seq>" (or "<channel>=<ms>-<seq>,...")
  // was published; "" for an id without a time, never a wrong time.
  function clock(id) {
    var ms = /^(?:[^=,]*=)?(\d{1,15})-\d/.exec(id || "");
    if (!ms) {
      return "";
    }
    var when = new Date(+ms[1]);
    var minutes = when.getMinutes();
    return when.getHours() + ":" + (minutes < 10 ? "0" : "") + minutes;
  }

  ssehub.on = on;
  ssehub.onSubmit = onSubmit;
  ssehub.clear = clear;
  ssehub.setText = setText;
  ssehub.element = element;
  ssehub.clock = clock;
}(window, document));
