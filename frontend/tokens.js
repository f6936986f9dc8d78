/* ssehub tokens: streams of private channels, for ssehub.open(path, callback,
 * {token} or {tokenUrl}), which loads this file from the hub when asked.
 * A tokenUrl (resolved against the page, fetched with its cookies) answers
 * {"token": "..."}; a new token is fetched a quarter of its life (at most a
 * minute) before it expires, and the stream moves to it, resuming from the
 * last event the page was given. When the hub ends a stream with
 * ssehub.token-expired (a sleeping laptop, a throttled tab), the same happens
 * from the id that event carries. ECMAScript 3 syntax (IE8). */
(function (window) {
  "use strict";

  var ssehub = window.ssehub;
  var EXPIRED_EVENT = "ssehub.token-expired";
  var BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  var MAX_RETRY_MS = 60000;
  // setTimeout keeps 32 bits: a longer delay would fire at once.
  var MAX_TIMER_MS = 0x7fffffff;
  var CLOSED = 2;
  var sources = {};

  function now() {
    return new Date().getTime();
  }

  function base64urlText(text) {
    var bytes = "";
    var bits = 0;
    var value = 0;
    for (var i = 0; i < text.length; i += 1) {
      value = ((value << 6) | BASE64URL.indexOf(text.charAt(i))) & 0xffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes += String.fromCharCode((value >> bits) & 0xff);
      }
    }
    return decodeURIComponent(escape(bytes)); // UTF-8 bytes to text
  }

  // A token's claims, unverified (the hub verifies), or {} when it has none to read.
  function claims(token) {
    try {
      var parsed = JSON.parse(base64urlText(String(token).split(".")[1] || ""));
      return parsed && typeof parsed === "object" ? parsed : {};
    } catch (unreadable) {
      return {};
    }
  }

  // How long a token fetched now lasts, in ms (null: it never expires). Read
  // from iat and exp where it has both, so the page's clock need not agree
  // with the hub's; from exp and the page's clock otherwise.
  function lifetime(token) {
    var c = claims(token);
    if (typeof c.exp !== "number") {
      return null;
    }
    return (c.exp - (typeof c.iat === "number" ? c.iat : now() / 1000)) * 1000;
  }

  /* The tokens of one tokenUrl, shared by every stream and widget on the page that names it. */
  function TokenSource(url) {
    this.url = url;
    this.token = null;
    this.fresh = false;
    this.staleAt = null; // when the token expires, by the page's clock
    this.fetching = false;
    this.retryMs = 0;
    this.waiting = [];
    this.watchers = [];
  }

  // `callback(token)` once a fresh token is at hand.
  TokenSource.prototype.get = function (callback) {
    if (this.fresh && (this.staleAt === null || now() < this.staleAt)) {
      callback(this.token);
      return;
    }
    this.waiting.push(callback);
    this.fetch();
  };

  // `callback(token)` for every token fetched from now on.
  TokenSource.prototype.watch = function (callback) {
    this.watchers.push(callback);
  };

  // The hub refused `token` or said it expired: the next get() fetches another.
  TokenSource.prototype.spent = function (token) {
    if (token === this.token) {
      this.fresh = false;
    }
  };

  TokenSource.prototype.fetch = function () {
    if (this.fetching) {
      return;
    }
    this.fetching = true;
    var self = this;
    var xhr = new window.XMLHttpRequest();
    xhr.open("GET", this.url, true);
    if ("withCredentials" in xhr) {
      xhr.withCredentials = true; // the page's cookies, on another origin too
    }
    xhr.onreadystatechange = function () {
      if (xhr.readyState !== 4) {
        return;
      }
      self.fetching = false;
      var token = null;
      try {
        token = xhr.status === 200 ? JSON.parse(xhr.responseText).token : null;
      } catch (notJson) {}
      if (typeof token === "string" && token) {
        self.received(token);
      } else {
        // Logged out, or the app is down: keep asking, less and less often.
        self.retryMs = Math.min(Math.max(self.retryMs * 2, 1000), MAX_RETRY_MS);
        window.setTimeout(function () { self.fetch(); }, self.retryMs);
      }
    };
    xhr.send(null);
  };

  TokenSource.prototype.received = function (token) {
    var self = this;
    var i;
    var life = lifetime(token);
    this.token = token;
    this.fresh = true;
    this.staleAt = life === null ? null : now() + life;
    this.retryMs = 0;
    // Fetched again a quarter of its life (at most a minute) before it expires.
    // A token that lasts under 2 s (a clock far off) is not: the hub's
    // token-expired event asks for the next one, which cannot loop hot.
    if (life !== null && life > 2000) {
      window.setTimeout(function () {
        if (self.token === token) {
          self.fresh = false;
          self.fetch();
        }
      }, Math.min(life - Math.min(life / 4, 60000), MAX_TIMER_MS));
    }
    var waiting = this.waiting;
    this.waiting = [];
    for (i = 0; i < waiting.length; i += 1) {
      waiting[i](token);
    }
    for (i = 0; i < this.watchers.length; i += 1) {
      this.watchers[i](token);
    }
  };

  function tokenSource(url) {
    return sources[url] || (sources[url] = new TokenSource(url));
  }

  // Calls `remember(event)` before every listener the page adds: native
  // EventSource does not tell which id it is at, and a new connection must
  // resume exactly after the last event the page was given.
  function trackEvents(source, remember) {
    var add = source.addEventListener;
    var remove = source.removeEventListener;
    var wrapped = [];
    source.addEventListener = function (type, listener, capture) {
      var wrapper = function (event) {
        remember(event);
        return typeof listener === "function" ? listener.call(source, event) : listener.handleEvent(event);
      };
      wrapped.push([type, listener, wrapper]);
      add.call(source, type, wrapper, capture);
    };
    source.removeEventListener = function (type, listener, capture) {
      for (var i = 0; i < wrapped.length; i += 1) {
        if (wrapped[i][0] === type && wrapped[i][1] === listener) {
          remove.call(source, type, wrapped[i][2], capture);
          wrapped.splice(i, 1);
          return;
        }
      }
    };
    // The events of onmessage, and where a long poll stands before any event.
    source.addEventListener("message", function () {}, false);
    source.addEventListener("ssehub.position", function () {}, false);
  }

  /* ssehub.open with a token: see the top of this file. */
  function openWithToken(path, callback, options) {
    var tokens = options.tokenUrl ? tokenSource(options.tokenUrl) : null;
    var lastId = options.lastEventId || "";
    var current = null;
    var currentToken = null;
    var openedAt = 0;
    var retryMs = 0;

    function start(token) {
      var url = ssehub.withParam(ssehub.hub + path, "token", token);
      if (current) {
        current.close();
      }
      currentToken = token;
      openedAt = now();
      url = lastId ? ssehub.withParam(url, "lastEventId", lastId) : url;
      ssehub.connect(url, function (source, transport) {
        current = source;
        trackEvents(source, function (event) {
          if (event.lastEventId) {
            lastId = event.lastEventId;
          }
        });
        source.addEventListener(EXPIRED_EVENT, function () {
          source.close();
          if (tokens) {
            tokens.spent(token);
            again();
          }
        }, false);
        source.addEventListener("error", function () {
          // Closed for good: refused (401/403; under IE 8-9's XDomainRequest, which
          // cannot see a status, the polyfill closes too), so this token will not do.
          if (tokens && source.readyState === CLOSED && source === current) {
            source.close();
            tokens.spent(token);
            again();
          }
        }, false);
        callback(source, transport);
      }, options.withCredentials);
    }

    // Reconnect with a fresh token at once, or after a growing pause when the
    // last connection lasted under 5 s (a token URL that hands out bad tokens).
    function again() {
      retryMs = now() - openedAt < 5000 ? Math.min(Math.max(retryMs * 2, 1000), MAX_RETRY_MS) : 0;
      window.setTimeout(function () { tokens.get(start); }, retryMs);
    }

    if (!tokens) {
      start(options.token);
      return;
    }
    tokens.watch(function (token) {
      // Move to the new token now, if it is known where to resume; otherwise the
      // hub ends the stream at expiry with the exact id, and the move happens then.
      if (current && token !== currentToken && current.readyState !== CLOSED && lastId) {
        start(token);
      }
    });
    tokens.get(start);
  }

  ssehub.openWithToken = openWithToken;
  ssehub.tokenSource = tokenSource;
  ssehub.claims = claims;
}(window));
