/* The chat demo: recent history, live messages, posting as a named user.
 * Served after loader.js and dom.js as one file. The channel and the limits
 * come from the hub (GET /chat/settings), which enforces them.
 * Every message is shown as text (createTextNode), never as HTML.
 * ECMAScript 3 syntax, so the long-poll path works in IE8 too. */
(function (window, document) {
  "use strict";

  var ssehub = window.ssehub;
  var onSubmit = ssehub.onSubmit;
  var setText = ssehub.setText;
  var element = ssehub.element;
  var settings = null;
  var me = null;
  // Posts may answer out of order; only the newest post's answer sets the notice.
  var postsSent = 0;
  var noticeFrom = 0;

  function byId(id) {
    return document.getElementById(id);
  }

  function show(node, visible) {
    node.className = node.className.replace(/\s*is-hidden/g, "") + (visible ? "" : " is-hidden");
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
    xhr.open(method, ssehub.hub + path, true);
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

  function render(message, id) {
    var list = byId("messages");
    // Only names the hub signed are verified; widget posts bring any name they like.
    var verified = message.verified === true;
    var item = element("li", "message" + (verified && message.author === me ? " message-mine" : ""));
    var meta = element("div", "message-meta");
    meta.appendChild(element("span", "message-author", String(message.author)));
    if (!verified) {
      meta.appendChild(element("span", "message-guest", "guest"));
    }
    meta.appendChild(element("span", "message-time", ssehub.clock(id)));
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
    var path = "/events?channel=" + encodeURIComponent(settings.channel) + "&history=" + settings.history;
    ssehub.open(path, function (source, transport) {
      setText(byId("transport"), transport === "native" ? "EventSource" : "long-polling (EventSource polyfill)");
      source.addEventListener(settings.event, function (event) {
        setStatus("live", true);
        render(JSON.parse(event.data), event.lastEventId);
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

  onSubmit(byId("name-form"), function () {
    send("POST", "/chat/name", { name: byId("name").value }, function (status, reply) {
      if (status === 200) {
        notify("");
        joined(reply.name);
      } else {
        notify(reply.error);
      }
    });
  });

  onSubmit(byId("message-form"), function () {
    var input = byId("text");
    postsSent += 1;
    var post = postsSent;
    send("POST", "/chat/messages", { channel: settings.channel, text: input.value }, function (status, reply) {
      if (status === 201 && input.value !== "" && post === postsSent) {
        input.value = "";
      }
      if (post >= noticeFrom) {
        noticeFrom = post;
        notify(status === 201 ? "" : reply.error);
      }
    });
  });

  function start(status, reply) {
    if (status !== 200) {
      notify(reply.error);
      return;
    }
    settings = reply;
    if (settings.channel === null) {
      setStatus("chat off", false);
      notify("Chat is turned off on this hub.");
      return;
    }
    byId("name").maxLength = settings.max_name_chars;
    byId("text").maxLength = settings.max_text_chars;
    send("GET", "/chat/name", null, function (status, reply) {
      if (status === 200 && reply.name) {
        joined(reply.name);
      } else if (me === null) {
        show(byId("name-form"), true);
      }
    });
    listen();
  }

  send("GET", "/chat/settings", null, start);
}(window, document));
