/* ssehub loader: native EventSource where the browser has one; otherwise the
 * vendored event-source-polyfill, long-polling. ECMAScript 3 syntax (IE8).
 * API: ssehub.open(path, callback(source, transport)[, options]), ssehub.channelOf(event).
 * Options: token or tokenUrl (private channels: tokens.js), lastEventId,
 * withCredentials (send the page's cookies, ssehub_token, to the hub). */
(function (window, document) {
  "use strict";

  var NAMESPACE = "ssehub";
  var POLYFILL_PATH = "/polyfills/event-source-polyfill/1.0.31/eventsource.js";
  // Tells the hub to end each response, which makes the polyfill long-poll.
  var LONG_POLL_MARKER = "ssehub_poll";
  // The polyfill reconnects after this long without a byte; the hub holds 25 s.
  var HEARTBEAT_TIMEOUT_MS = 45000;

  if (window[NAMESPACE] && window[NAMESPACE].open) {
    return; // loaded twice: keep the first
  }

  // Captured now: the polyfill, once loaded, replaces window.EventSource.
  var NativeEventSource = window.EventSource;
  var TOKENS_PATH = "/tokens.js";
  // Scripts fetched from the hub on demand, by path: {ready, waiting}.
  var loading = {};

  function currentScript() {
    if (document.currentScript) {
      return document.currentScript;
    }
    // Old IE: the last of our tags (async tags may not be the last script).
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i -= 1) {
      if (/\/(loader|widget|chat)\.js([?#]|$)/.test(scripts[i].src)) {
        return scripts[i];
      }
    }
    return scripts[scripts.length - 1];
  }

  // The hub is where this script came from, path too (/hub/loader.js: /hub).
  function baseOf(src) {
    var match = /^(https?:\/\/[^?#]*)\/[^\/?#]+\.js([?#]|$)/i.exec(src || "");
    return match ? match[1] : "";
  }

  var HUB = baseOf(currentScript().src);

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

  // `callback()` once the script at `path` on the hub has run (loaded once).
  function whenLoaded(path, callback) {
    var script = loading[path];
    if (script && script.ready) {
      callback();
      return;
    }
    if (script) {
      script.waiting.push(callback);
      return;
    }
    script = loading[path] = { ready: false, waiting: [callback] };
    var tag = document.createElement("script");
    tag.src = HUB + path;
    tag.onload = tag.onreadystatechange = function () {
      var state = tag.readyState;
      if (script.ready || (state && state !== "loaded" && state !== "complete")) {
        return;
      }
      script.ready = true;
      tag.onload = tag.onreadystatechange = null;
      for (var i = 0; i < script.waiting.length; i += 1) {
        script.waiting[i]();
      }
      script.waiting = [];
    };
    (document.head || document.getElementsByTagName("head")[0]).appendChild(tag);
  }

  function withParam(url, name, value) {
    return url + (url.indexOf("?") === -1 ? "?" : "&") + name + "=" + encodeURIComponent(value);
  }

  // `callback(source, transport)`: an object with the EventSource API for
  // `url`, and "native" or "long-poll"; `credentials`: send the page's cookies.
  function connect(url, callback, credentials) {
    var init = { withCredentials: !!credentials, heartbeatTimeout: HEARTBEAT_TIMEOUT_MS };
    if (NativeEventSource) {
      callback(new NativeEventSource(url, init), "native");
      return;
    }
    stubConsole();
    whenLoaded(POLYFILL_PATH, function () {
      callback(new window.EventSourcePolyfill(withParam(url, LONG_POLL_MARKER, 1), init), "long-poll");
    });
  }

  // `callback()` once tokens.js (private channels) is loaded.
  function withTokens(callback) {
    whenLoaded(TOKENS_PATH, callback);
  }

  /* Open `path` on the hub; `callback(source, transport)` runs for each connection opened. */
  function open(path, callback, options) {
    options = options || {};
    if (options.token || options.tokenUrl) {
      withTokens(function () { window[NAMESPACE].openWithToken(path, callback, options); });
      return;
    }
    var url = options.lastEventId ? withParam(HUB + path, "lastEventId", options.lastEventId) : HUB + path;
    connect(url, callback, options.withCredentials);
  }

  // Ids on a several-channel stream read "channel=id,..." with the event's own
  // channel first; on a one-channel stream this returns null.
  function channelOf(event) {
    var id = event.lastEventId || "";
    var equals = id.indexOf("=");
    return equals === -1 ? null : id.substring(0, equals);
  }

  window[NAMESPACE] = {
    open: open, connect: connect, withTokens: withTokens, withParam: withParam, channelOf: channelOf, hub: HUB
  };
}(window, document));
