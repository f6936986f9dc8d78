/* The chat demo: recent history, live messages, posting as a named user.
 * Every message is shown as text (createTextNode), never as HTML.
 * ECMAScript 3 syntax, so the long-poll path works in IE8 too. */
(function (window, document) {
  "use strict";

  var CHANNEL = "chat";
  var HISTORY = 50;
  var ssehub = window.ssehub;
  var me = null;
  // Posts may answer out of order; only the newest post's answer sets the notice.
  var postsSent = 0;
  var noticeFrom = 0;

  function byId(id) {
    return document.getElementById(id);
  }

  function on(element, type, handler) {
    if (element.addEventListener) {
      element.addEventListener(type, handler, false);
    } else {
      element.attachEvent("on" + type, handler);
    }
  }

  function show(element, visible) {
    element.className = element.className.replace(/\s*is-hidden/g, "") + (visible ? "" : " is-hidden");
  }

  function setText(element, text) {
    while (element.firstChild) {
      element.removeChild(element.firstChild);
    }
    element.appendChild(document.createTextNode(text));
  }

  function notify(text) {
    setText(byId("notice"), text);
    show(byId("notice"), text !== "");
  }

  function setStatus(text, live) {
    var status = byId("status");
    setText(status, text);
    status.className = "status " + (live ? "status-live" : "status-connecting");
  }

  function send(method, path, body, done) {
    var xhr = new XMLHttpRequest();
    xhr.open(method, path, true);
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) {
        return;
      }
      var reply = {};
      try {
        reply = JSON.parse(xhr.responseText);
      } catch (ignored) {
        reply = { error: "the hub did not answer (" + xhr.status + ")" };
      }
      done(xhr.status, reply);
    };
    xhr.send(body === null ? null : JSON.stringify(body));
  }

  // "2026-11-23T22:30:05+00:00" -> local "22:30"; IE8 cannot parse ISO dates.
  function clock(iso) {
    var parts = /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)/.exec(iso || "");
    if (!parts) {
      return "";
    }
    var when = new Date(Date.UTC(+parts[1], +parts[2] - 1, +parts[3], +parts[4], +parts[5], +parts[6]));
    var minutes = when.getMinutes();
    return when.getHours() + ":" + (minutes < 10 ? "0" : "") + minutes;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) {
      node.appendChild(document.createTextNode(text));
    }
    return node;
  }

  function render(message) {
    var list = byId("messages");
    // Only names the hub signed are verified; widget posts bring any name they like.
    var verified = message.verified === true;
    var item = element("li", "message" + (verified && message.author === me ? " message-mine" : ""));
    var meta = element("div", "message-meta");
    meta.appendChild(element("span", "message-author", String(message.author)));
    if (!verified) {
      meta.appendChild(element("span", "message-guest", "guest"));
    }
    meta.appendChild(element("span", "message-time", clock(message.time)));
    item.appendChild(meta);
    item.appendChild(element("p", "message-text", String(message.text)));
    list.appendChild(item);
    list.scrollTop = list.scrollHeight;
  }

  function joined(name) {
    me = name;
    setText(byId("you"), name);
    show(byId("name-form"), false);
    show(byId("message-form"), true);
    byId("text").focus();
  }

  function listen() {
    ssehub.open("/events?channel=" + CHANNEL + "&history=" + HISTORY, function (source, transport) {
      setText(byId("transport"), transport === "native" ? "EventSource" : "long-polling (EventSource polyfill)");
      source.addEventListener("chat", function (event) {
        setStatus("live", true);
        render(JSON.parse(event.data));
      }, false);
      source.addEventListener("ssehub.reset", function () {
        notify("Some older messages could not be fetched; showing what the hub still has.");
      }, false);
      source.addEventListener("ssehub.position", function () {
        setStatus("live", true);
      }, false);
      source.onopen = function () {
        setStatus("live", true);
      };
      source.onerror = function () {
        // Long-polling ends every response on purpose; only a closed source is trouble.
        if (transport === "native" || source.readyState === 2) {
          setStatus("reconnecting\u2026", false);
        }
      };
    });
  }

  on(byId("name-form"), "submit", function (event) {
    if (event.preventDefault) { event.preventDefault(); } else { event.returnValue = false; }
    send("POST", "/chat/name", { name: byId("name").value }, function (status, reply) {
      if (status === 200) {
        notify("");
        joined(reply.name);
      } else {
        notify(reply.error);
      }
    });
  });

  on(byId("message-form"), "submit", function (event) {
    if (event.preventDefault) { event.preventDefault(); } else { event.returnValue = false; }
    var input = byId("text");
    postsSent += 1;
    var post = postsSent;
    send("POST", "/chat/messages", { text: input.value }, function (status, reply) {
      if (status === 201 && input.value !== "" && post === postsSent) {
        input.value = "";
      }
      if (post >= noticeFrom) {
        noticeFrom = post;
        notify(status === 201 ? "" : reply.error);
      }
    });
  });

  send("GET", "/chat/name", null, function (status, reply) {
    if (status === 200 && reply.name) {
      joined(reply.name);
    }
  });
  listen();
}(window, document));
