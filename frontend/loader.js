/* ssehub loader: native EventSource where the browser has one; otherwise the
 * vendored event-source-polyfill, long-polling. ECMAScript 3 syntax (IE8).
 * API: ssehub.open(path, callback(source, transport)), ssehub.channelOf(event). */
(function (window, document) {
  "use strict";

  var NAMESPACE = "ssehub";
  var POLYFILL_PATH = "/polyfills/event-source-polyfill/1.0.31/eventsource.js";
  // Tells the hub to end each response, which makes the polyfill long-poll.
  var LONG_POLL_MARKER = "ssehub_poll=1";
  // The polyfill reconnects after this long without a byte; the hub holds 25 s.
  var HEARTBEAT_TIMEOUT_MS = 45000;

  if (window[NAMESPACE] && window[NAMESPACE].open) {
    return; // loaded twice: keep the first
  }

  // Captured now: the polyfill, once loaded, replaces window.EventSource.
  var NativeEventSource = window.EventSource;
  var polyfillState = "absent";
  var waiting = [];

  function currentScript() {
    if (document.currentScript) {
      return document.currentScript;
    }
    // Old IE: the last of our tags (async tags may not be the last script).
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i -= 1) {
      if (/\/(loader|widget)\.js([?#]|$)/.test(scripts[i].src)) {
        return scripts[i];
      }
    }
    return scripts[scripts.length - 1];
  }

  // The hub is wherever this script came from, so other sites can embed it.
  function originOf(src) {
    var match = /^(https?:\/\/[^\/?#]+)/i.exec(src || "");
    return match ? match[1] : "";
  }

  var HUB = originOf(currentScript().src);

  function stubConsole() {
    // The polyfill calls console.error; old IE has no console until devtools open.
    var names = ["log", "debug", "info", "warn", "error"];
    var console = window.console || (window.console = {});
    for (var i = 0; i < names.length; i += 1) {
      if (!console[names[i]]) {
        console[names[i]] = function () {};
      }
    }
  }

  function whenPolyfillReady(callback) {
    if (polyfillState === "ready") {
      callback();
      return;
    }
    waiting.push(callback);
    if (polyfillState === "loading") {
      return;
    }
    polyfillState = "loading";
    stubConsole();
    var script = document.createElement("script");
    script.src = HUB + POLYFILL_PATH;
    script.onload = script.onreadystatechange = function () {
      var state = script.readyState;
      if (polyfillState === "ready" || (state && state !== "loaded" && state !== "complete")) {
        return;
      }
      polyfillState = "ready";
      script.onload = script.onreadystatechange = null;
      var callbacks = waiting;
      waiting = [];
      for (var i = 0; i < callbacks.length; i += 1) {
        callbacks[i]();
      }
    };
    (document.head || document.getElementsByTagName("head")[0]).appendChild(script);
  }

  function withMarker(url) {
    return url + (url.indexOf("?") === -1 ? "?" : "&") + LONG_POLL_MARKER;
  }

  /* Open `path` on the hub; `callback(source, transport)` gets an object with
   * the EventSource API, and "native" or "long-poll". */
  function open(path, callback) {
    var url = HUB + path;
    if (NativeEventSource) {
      callback(new NativeEventSource(url), "native");
      return;
    }
    whenPolyfillReady(function () {
      var source = new window.EventSourcePolyfill(withMarker(url), { heartbeatTimeout: HEARTBEAT_TIMEOUT_MS });
      callback(source, "long-poll");
    });
  }

  // Ids on a several-channel stream read "channel=id,..." with the event's own
  // channel first; on a one-channel stream this returns null.
  function channelOf(event) {
    var id = event.lastEventId || "";
    var equals = id.indexOf("=");
    return equals === -1 ? null : id.substring(0, equals);
  }

  window[NAMESPACE] = { open: open, channelOf: channelOf, hub: HUB };
}(window, document));
