/* ssehub widget: a live feed or chat in any page with one script tag.
 *   <script async src="https://HUB/widget.js" data-channel="news"></script>
 * Served after loader.js and dom.js as one file. Shadow DOM where the browser has it,
 * prefixed class names otherwise; messages are always text, never HTML.
 * All widgets on a page share one connection (one per data-token-url). ECMAScript 3 syntax. */
(function (window, document) {
  "use strict";

  var ssehub = window.ssehub;
  var setText = ssehub.setText;
  var PREFIX = "ssehub-w";
  var MOUNTED = "data-ssehub-mounted";
  var STYLE_ID = "ssehub-w-style";
  var NAME_KEY = "ssehub-w-name";
  var DARK = "{color:#e6e9ee;background:#1b2130;border-color:#323b4d}";
  // "&" stands for the widget's class, as in Sass.
  var CSS = ("&{font:14px/1.4 -apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1c2430;" +
    "background:#fff;border:1px solid #d5dbe3;border-radius:8px;overflow:hidden;text-align:left;max-width:480px}" +
    "&-dark" + DARK + "@media (prefers-color-scheme:dark){&-auto" + DARK + "}" +
    "&-head{display:flex;align-items:baseline;padding:8px 12px;font-weight:600;" +
    "border-bottom:1px solid rgba(128,128,128,.25)}" +
    "&-title{flex:1;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}" +
    "&-status{flex:none;margin-left:8px;font-weight:400;font-size:12px;opacity:.7}" +
    "&-list{list-style:none;margin:0;padding:0 12px;max-height:320px;overflow-y:auto}" +
    "&-item{margin:0;padding:6px 0;border-bottom:1px solid rgba(128,128,128,.15)}" +
    "&-meta{font-size:12px;opacity:.7}&-author{font-weight:600;margin-right:6px}" +
    "&-guest{margin-right:6px;padding:0 4px;border:1px solid;border-radius:3px;font-style:italic}" +
    "&-text{margin:0;white-space:pre-wrap;word-wrap:break-word}" +
    "&-form{display:flex;gap:6px;padding:8px 12px;border-top:1px solid rgba(128,128,128,.25)}" +
    "&-form input{min-width:0;flex:1;padding:6px 8px;border:1px solid #b8c1cc;border-radius:5px;font:inherit}" +
    "&-form &-name{flex:0 0 28%}" +
    "&-form button{padding:6px 12px;border:0;border-radius:5px;background:#2b5797;color:#fff;font:inherit}" +
    "&-notice{margin:0;padding:4px 12px;font-size:12px;color:#b3261e}").replace(/&/g, "." + PREFIX);

  // Shared by every copy of this script on the page (including it twice is harmless).
  var state = ssehub.widgets || (ssehub.widgets = { byChannel: {}, channels: [], connected: {} });

  // Prefixed class names, for browsers without Shadow DOM.
  function part(tag, name, text) {
    return ssehub.element(tag, PREFIX + "-" + name, text);
  }

  function option(script, name, fallback) {
    return script.getAttribute("data-" + name) || fallback; // unset or ""
  }

  // Where to draw: the element named by data-target, else right after the tag.
  function placeFor(script) {
    var place = document.getElementById(option(script, "target", "").replace(/^#/, ""));
    if (!place) {
      place = document.createElement("div");
      script.parentNode.insertBefore(place, script.nextSibling);
    }
    var host = document.createElement("div");
    place.appendChild(host);
    if (host.attachShadow) {
      host = host.attachShadow({ mode: "open" });
      addStyle(host);
    } else if (!document.getElementById(STYLE_ID)) {
      addStyle(document.head || document.getElementsByTagName("head")[0]).id = STYLE_ID;
    }
    return host;
  }

  function addStyle(parent) {
    var style = document.createElement("style");
    style.setAttribute("type", "text/css");
    parent.appendChild(style);
    if (style.styleSheet) {
      style.styleSheet.cssText = CSS; // IE8
    } else {
      style.appendChild(document.createTextNode(CSS));
    }
    return style;
  }

  // The object that JSON `data` holds if it has `key`, else `fallback`.
  function jsonWith(data, key, fallback) {
    try {
      var value = JSON.parse(data);
      return value && value[key] !== undefined ? value : fallback;
    } catch (notJson) {
      return fallback;
    }
  }

  function Widget(script) {
    this.channel = option(script, "channel", "");
    // Private channels: the page's own URL that answers {"token": ...}; chat then posts as the token's name.
    this.tokenUrl = option(script, "token-url", "");
    this.maxItems = Math.max(1, parseInt(option(script, "max-items", "20"), 10) || 20);
    this.newestFirst = option(script, "order", "newest-first") !== "newest-last";
    this.timestamps = option(script, "timestamps", "true") !== "false";
    var events = option(script, "events", "");
    this.events = events && "," + events.replace(/\s+/g, "") + ",";
    var theme = option(script, "theme", "auto");
    var root = part("div", theme === "dark" || theme === "light" ? theme : "auto");
    root.className += " " + PREFIX;
    var head = part("div", "head");
    head.appendChild(part("span", "title", option(script, "title", this.channel)));
    this.status = part("span", "status", "connecting\u2026");
    head.appendChild(this.status);
    this.list = part("ol", "list");
    this.notice = part("p", "notice");
    root.appendChild(head);
    root.appendChild(this.list);
    root.appendChild(this.notice);
    if (option(script, "mode", "feed") === "chat") {
      root.appendChild(this.chatForm());
    }
    placeFor(script).appendChild(root);
  }

  Widget.prototype.add = function (type, data, id) {
    if (this.events && this.events.indexOf("," + type + ",") === -1) {
      return;
    }
    // Chat events carry {"author", "text", "time", "verified"}; others show as they came.
    var message = jsonWith(data, "text", { text: data });
    var list = this.list;
    var item = part("li", "item");
    if (this.timestamps || message.author !== undefined) {
      var meta = part("div", "meta");
      if (message.author !== undefined) {
        meta.appendChild(part("span", "author", String(message.author)));
        if (message.verified !== true) {
          // Only names the hub signed are verified; anyone can type any other.
          meta.appendChild(part("span", "guest", "guest"));
        }
      }
      if (this.timestamps) {
        meta.appendChild(part("span", "time", ssehub.clock(id)));
      }
      item.appendChild(meta);
    }
    item.appendChild(part("p", "text", String(message.text)));
    list.insertBefore(item, this.newestFirst ? list.firstChild : null);
    while (list.childNodes.length > this.maxItems) {
      list.removeChild(this.newestFirst ? list.lastChild : list.firstChild);
    }
    if (!this.newestFirst) {
      list.scrollTop = list.scrollHeight;
    }
  };

  Widget.prototype.chatForm = function () {
    var widget = this;
    var form = part("form", "form");
    var name = part("input", "name");
    var text = part("input", "message");
    var storage = null;
    try {
      storage = window.localStorage;
    } catch (blocked) {}
    name.setAttribute("placeholder", "Name");
    name.value = (storage && storage.getItem(NAME_KEY)) || "";
    text.setAttribute("placeholder", "Message");
    if (this.tokenUrl) {
      // The hub posts as the token's name; show it, and no name to type.
      name = part("span", "name");
      this.withToken(function (token) {
        var claims = ssehub.claims(token);
        setText(name, String((claims.ssehub && claims.ssehub.name) || claims.sub || ""));
      });
    }
    form.appendChild(name);
    form.appendChild(text);
    form.appendChild(part("button", "send", "Send"));
    ssehub.onSubmit(form, function () {
      if (widget.tokenUrl) {
        widget.withToken(function (token) {
          widget.post({ channel: widget.channel, text: text.value, token: token }, function () { text.value = ""; });
        });
        return;
      }
      if (storage) {
        storage.setItem(NAME_KEY, name.value);
      }
      widget.post({ channel: widget.channel, author: name.value, text: text.value }, function () { text.value = ""; });
    });
    return form;
  };

  // `callback(token)` with a fresh token from data-token-url.
  Widget.prototype.withToken = function (callback) {
    var url = this.tokenUrl;
    ssehub.withTokens(function () { ssehub.tokenSource(url).get(callback); });
  };

  Widget.prototype.post = function (message, sent) {
    var widget = this;
    var xhr = window.XDomainRequest && !("withCredentials" in new window.XMLHttpRequest())
      ? new window.XDomainRequest() : new window.XMLHttpRequest();
    xhr.open("POST", ssehub.hub + "/widget/messages");
    xhr.onload = function () {
      var status = xhr.status || 201; // XDomainRequest has no status and fires onload on success only
      var reply = jsonWith(xhr.responseText, "error", {});
      setText(widget.notice, status === 201 ? "" : reply.error || "could not post (" + status + ")");
      if (status === 201) {
        sent();
      }
    };
    xhr.onerror = function () {
      setText(widget.notice, "could not reach the hub");
    };
    // text/plain: no CORS preflight, and all that XDomainRequest can send.
    xhr.send(JSON.stringify(message));
  };

  function each(channels, action) {
    for (var i = 0; i < channels.length; i += 1) {
      var widgets = state.byChannel[channels[i]] || [];
      for (var j = 0; j < widgets.length; j += 1) {
        action(widgets[j]);
      }
    }
  }

  // One connection for the widgets found so far with the same token URL; later ones get their own.
  function connect(channels, tokenUrl) {
    var query = "";
    var history = 1;
    for (var i = 0; i < channels.length; i += 1) {
      query += (i ? "&" : "") + "channel=" + encodeURIComponent(channels[i]);
    }
    each(channels, function (widget) { history = Math.max(history, widget.maxItems); });
    function show(status) {
      each(channels, function (widget) { setText(widget.status, status); });
    }
    function live() {
      show("live");
    }
    var path = "/events?" + query + "&history=" + Math.min(history, 100) + "&wrap=1";
    ssehub.open(path, function (source, transport) {
      // With wrap=1 the hub sends every event as a message, {"event": type, "data": data}:
      // native EventSource only tells listeners about types named in advance.
      source.addEventListener("message", function (event) {
        var wrapped = jsonWith(event.data, "event", { event: "message", data: event.data });
        each([ssehub.channelOf(event) || channels[0]], function (widget) {
          widget.add(wrapped.event, wrapped.data, event.lastEventId);
        });
        live();
      }, false);
      source.addEventListener("ssehub.position", live, false);
      source.addEventListener("ssehub.reset", function (event) {
        each([JSON.parse(event.data).channel], function (widget) {
          ssehub.clear(widget.list);
        });
      }, false);
      source.onopen = live;
      source.onerror = function () {
        // Long-polling ends every response on purpose; only a closed source is trouble.
        var closed = source.readyState === 2;
        if (closed || transport === "native") {
          show(closed ? "not available on this site" : "reconnecting\u2026");
        }
      };
    }, tokenUrl ? { tokenUrl: tokenUrl } : undefined);
  }

  function connectPending() {
    var fresh = {};
    var tokenUrls = [];
    for (var i = 0; i < state.channels.length; i += 1) {
      var channel = state.channels[i];
      if (!state.connected[channel]) {
        state.connected[channel] = true;
        var tokenUrl = state.byChannel[channel][0].tokenUrl;
        if (!fresh[tokenUrl]) {
          fresh[tokenUrl] = [];
          tokenUrls.push(tokenUrl);
        }
        fresh[tokenUrl].push(channel);
      }
    }
    for (var j = 0; j < tokenUrls.length; j += 1) {
      connect(fresh[tokenUrls[j]], tokenUrls[j]);
    }
  }

  function mountAll() {
    var scripts = document.getElementsByTagName("script");
    for (var i = 0; i < scripts.length; i += 1) {
      var script = scripts[i];
      if (/\/widget\.js([?#]|$)/.test(script.src) && !script.getAttribute(MOUNTED) && option(script, "channel", "")) {
        script.setAttribute(MOUNTED, "1");
        var widget = new Widget(script);
        var mates = state.byChannel[widget.channel];
        if (!mates) {
          mates = state.byChannel[widget.channel] = [];
          state.channels.push(widget.channel);
        }
        mates.push(widget);
      }
    }
  }

  mountAll();
  // Wait for the page's other widget tags, so they all share one connection.
  if (document.readyState === "complete") {
    window.setTimeout(connectPending, 0);
  } else {
    ssehub.on(window, "load", connectPending);
  }
}(window, document));
