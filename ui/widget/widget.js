/*! kb-assistant chat widget. One tag adds a chat bubble to any page:
 *    <script src="https://HOST/widget.js" data-kb="hr" async></script>
 *  Attributes: data-kb (knowledge base, default "default"), data-key (API key, when the server needs one),
 *  data-lang ("zh"/"en"; default: the page's <html lang>), data-title, data-poll-ms (ticket polling, 10000),
 *  data-open ("true": start open).
 *  No framework; styles live in a shadow root; every text from the user, the KB or an agent is set with
 *  textContent (never parsed as HTML), so HTML in a question, a document or an answer stays inert text.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) {
    var found = document.querySelectorAll('script[src*="widget.js"]');
    script = found[found.length - 1];
  }
  if (!script || window.__kbAssistantWidget) return;
  window.__kbAssistantWidget = true;

  var data = script.dataset || {};
  var BASE = script.src.replace(/\/widget\.js(?:[?#].*)?$/, "");
  var KB = data.kb || "default";
  var KEY = data.key || "";
  var POLL_MS = Math.max(1000, parseInt(data.pollMs || "10000", 10) || 10000);
  var pageLang = (data.lang || document.documentElement.lang || navigator.language || "en").toLowerCase();
  var LANG = pageLang.indexOf("zh") === 0 ? "zh" : "en";

  var STRINGS = {
    zh: {
      title: "知识库助手", open: "有问题？问我", close: "关闭", placeholder: "输入你的问题…", send: "发送",
      thinking: "正在查找…", sources: "来源", up: "有帮助", down: "没帮助", thanks: "谢谢你的反馈！",
      comment: "哪里不对？（可选）", sendFeedback: "提交", ticket: "工单号",
      waiting: "同事会尽快回复，回复会显示在这里。", agent: "客服回复", error: "出错了：",
      hello: "你好！请用中文或英文提问，答案会附带出处。"
    },
    en: {
      title: "Knowledge assistant", open: "Questions? Ask me", close: "Close", placeholder: "Type your question…",
      send: "Send", thinking: "Looking it up…", sources: "Sources", up: "Helpful", down: "Not helpful",
      thanks: "Thanks for your feedback!", comment: "What was wrong? (optional)", sendFeedback: "Submit",
      ticket: "Ticket", waiting: "A colleague will reply soon; the reply will appear here.",
      agent: "Reply from our team", error: "Something went wrong: ",
      hello: "Hi! Ask in English or Chinese; answers come with their sources."
    }
  };
  var T = STRINGS[LANG];

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI','PingFang SC','Microsoft YaHei',sans-serif}",
    ".launcher{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:28px;",
    "padding:14px 18px;background:#2458d6;color:#fff;font-size:15px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".panel{position:fixed;right:20px;bottom:84px;z-index:2147483000;width:370px;max-width:calc(100vw - 40px);",
    "height:540px;max-height:calc(100vh - 110px);display:none;flex-direction:column;background:#fff;color:#1d2330;",
    "border-radius:14px;box-shadow:0 10px 36px rgba(0,0,0,.28);overflow:hidden;font-size:14px;line-height:1.5}",
    ".panel.open{display:flex}",
    ".head{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;background:#2458d6;color:#fff}",
    ".head b{font-size:15px}.x{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;line-height:1}",
    ".log{flex:1;overflow-y:auto;padding:12px;background:#f5f7fb}",
    ".msg{margin:0 0 10px;padding:9px 12px;border-radius:12px;max-width:88%;white-space:pre-wrap;word-wrap:break-word}",
    ".user{margin-left:auto;background:#2458d6;color:#fff;border-bottom-right-radius:4px}",
    ".bot,.agent{background:#fff;border:1px solid #e1e6ef;border-bottom-left-radius:4px}",
    ".agent{border-color:#1f9d55;background:#f0fbf4}",
    ".agent .label,.cites .label{display:block;font-size:12px;color:#5b6475;margin-bottom:2px}",
    ".err{background:#fff1f0;border:1px solid #f3b7b1;color:#a3261a}",
    "sup{color:#2458d6;font-weight:600;cursor:pointer;font-size:11px;margin:0 1px}",
    ".cites{margin-top:8px;border-top:1px solid #e1e6ef;padding-top:6px;white-space:normal}",
    ".cites ol{margin:0;padding-left:0;list-style:none}.cites li{margin:3px 0;font-size:12.5px}",
    ".cites summary{cursor:pointer;color:#2458d6}.cites .snip{margin:4px 0 6px;padding:6px 8px;background:#f5f7fb;",
    "border-radius:6px;white-space:pre-wrap;color:#333;font-size:12px}",
    ".ticket{margin-top:8px;padding:6px 8px;border-radius:8px;background:#fff7e0;font-size:12.5px;white-space:normal}",
    ".fb{margin-top:6px;display:flex;gap:6px;align-items:center;flex-wrap:wrap;white-space:normal}",
    ".fb button{border:1px solid #d5dbe6;background:#fff;border-radius:14px;padding:2px 9px;cursor:pointer;font-size:13px}",
    ".fb textarea{width:100%;min-height:46px;border:1px solid #d5dbe6;border-radius:8px;padding:6px;font-size:13px}",
    ".fb .done{font-size:12px;color:#1f9d55}",
    ".form{display:flex;gap:8px;padding:10px;border-top:1px solid #e1e6ef;background:#fff}",
    ".form textarea{flex:1;resize:none;height:42px;border:1px solid #d5dbe6;border-radius:10px;padding:9px;font-size:14px}",
    ".form button{border:0;border-radius:10px;background:#2458d6;color:#fff;padding:0 16px;cursor:pointer;font-size:14px}",
    ".form button:disabled{opacity:.55;cursor:default}"
  ].join("");

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function sessionId() {
    var k = "kb-assistant-session";
    try {
      var v = sessionStorage.getItem(k);
      if (!v) {
        v = Math.random().toString(36).slice(2) + Date.now().toString(36);
        sessionStorage.setItem(k, v);
      }
      return v;
    } catch (e) {
      return "s-" + Math.random().toString(36).slice(2);
    }
  }

  function headers(json) {
    var h = {};
    if (json) h["Content-Type"] = "application/json";
    if (KEY) h.Authorization = "Bearer " + KEY;
    return h;
  }

  function errorMessage(response) {
    return response.json().then(function (body) {
      return (body && body.error && body.error.message) || "HTTP " + response.status;
    }, function () { return "HTTP " + response.status; });
  }

  // Reads server-sent events from a fetch() body: calls onEvent(name, parsedData) per event.
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buf = "";
    for (;;) {
      var r = await reader.read();
      if (r.done) break;
      buf += decoder.decode(r.value, { stream: true }).replace(/\r\n/g, "\n");
      var cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        var block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        var name = "message", payload = "";
        block.split("\n").forEach(function (line) {
          if (line.indexOf("event:") === 0) name = line.slice(6).trim();
          else if (line.indexOf("data:") === 0) payload += line.slice(5).replace(/^ /, "");
        });
        if (payload) onEvent(name, JSON.parse(payload));
      }
    }
  }

  function Widget() {
    this.session = sessionId();
    this.history = [];
    this.busy = false;
    this.host = el("div");
    this.host.id = "kb-assistant-widget";
    this.root = this.host.attachShadow({ mode: "open" });
    this.root.appendChild(el("style", null, CSS));

    this.launcher = el("button", "launcher", "💬 " + T.open);
    this.launcher.setAttribute("aria-label", T.open);
    this.panel = el("section", "panel");
    this.panel.setAttribute("role", "dialog");
    this.panel.setAttribute("aria-label", data.title || T.title);
    var head = el("div", "head");
    head.appendChild(el("b", null, data.title || T.title));
    var close = el("button", "x", "×");
    close.setAttribute("aria-label", T.close);
    head.appendChild(close);
    this.log = el("div", "log");
    this.log.setAttribute("aria-live", "polite");
    var form = el("form", "form");
    this.input = el("textarea", "input");
    this.input.placeholder = T.placeholder;
    this.input.setAttribute("aria-label", T.placeholder);
    this.sendBtn = el("button", "send", T.send);
    this.sendBtn.type = "submit";
    form.appendChild(this.input);
    form.appendChild(this.sendBtn);
    this.panel.appendChild(head);
    this.panel.appendChild(this.log);
    this.panel.appendChild(form);
    this.root.appendChild(this.panel);
    this.root.appendChild(this.launcher);
    this.log.appendChild(el("div", "msg bot hello", T.hello));

    var self = this;
    this.launcher.addEventListener("click", function () { self.toggle(); });
    close.addEventListener("click", function () { self.toggle(false); });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); self.ask(); });
    this.input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); self.ask(); }
    });
    if (data.open === "true") this.toggle(true);
  }

  Widget.prototype.toggle = function (open) {
    var on = open === undefined ? !this.panel.classList.contains("open") : open;
    this.panel.classList.toggle("open", on);
    if (on) this.input.focus();
  };

  Widget.prototype.scroll = function () { this.log.scrollTop = this.log.scrollHeight; };

  Widget.prototype.ask = async function () {
    var question = this.input.value.trim();
    if (!question || this.busy) return;
    this.busy = true;
    this.sendBtn.disabled = true;
    this.input.value = "";
    this.log.appendChild(el("div", "msg user", question));
    var msg = el("div", "msg bot");
    msg.dataset.state = "streaming";
    var textNode = el("span", "text", T.thinking);
    msg.appendChild(textNode);
    this.log.appendChild(msg);
    this.scroll();
    var self = this, started = false, answer = null, body = {
      question: question, kb: KB, history: this.history.slice(-10), session_id: this.session, stream: true
    };
    try {
      var res = await fetch(BASE + "/api/ask", { method: "POST", headers: headers(true), body: JSON.stringify(body) });
      if (!res.ok) throw new Error(await errorMessage(res));
      await readEvents(res, function (name, payload) {
        if (name === "delta") {
          if (!started) { textNode.textContent = ""; started = true; }
          textNode.textContent += payload.text;
          self.scroll();
        } else if (name === "answer") {
          answer = payload;
        } else if (name === "error") {
          throw new Error((payload.error && payload.error.message) || "error");
        }
      });
      if (!answer) throw new Error("the answer was cut off");
      this.renderAnswer(msg, textNode, answer);
      this.history.push({ role: "user", content: question }, { role: "assistant", content: answer.text });
    } catch (e) {
      msg.className = "msg err";
      textNode.textContent = T.error + (e && e.message ? e.message : e);
    } finally {
      msg.dataset.state = "done";
      this.busy = false;
      this.sendBtn.disabled = false;
      this.scroll();
    }
  };

  // The answer text with each [n] as a superscript that opens source n; then the sources, feedback, ticket.
  Widget.prototype.renderAnswer = function (msg, textNode, answer) {
    msg.dataset.answerId = answer.id;
    msg.dataset.answered = String(answer.answered);
    textNode.textContent = "";
    var cites = answer.citations || [];
    var details = {};
    // "**…**" marks the key sentence of an extractive answer: shown bold, its text still a text node.
    var parts = String(answer.text).split(/(\[\d{1,2}\]|\*\*[^*\n]+\*\*)/);
    parts.forEach(function (part) {
      var m = /^\[(\d{1,2})\]$/.exec(part);
      if (/^\*\*[^*\n]+\*\*$/.test(part)) {
        textNode.appendChild(el("strong", "key", part.slice(2, -2)));
      } else if (m && cites.some(function (c) { return String(c.n) === m[1]; })) {
        var sup = el("sup", "ref", part);
        sup.addEventListener("click", function () {
          var d = details[m[1]];
          if (d) { d.open = true; d.scrollIntoView({ block: "nearest" }); }
        });
        textNode.appendChild(sup);
      } else if (part) {
        textNode.appendChild(document.createTextNode(part));
      }
    });
    if (cites.length) {
      var box = el("div", "cites");
      box.appendChild(el("span", "label", T.sources));
      var ol = el("ol");
      cites.forEach(function (c) {
        var li = el("li");
        var d = el("details");
        var where = [c.section, c.page ? "p. " + c.page : ""].filter(Boolean).join(" · ");
        d.appendChild(el("summary", null, "[" + c.n + "] " + c.source + (where ? " — " + where : "")));
        d.appendChild(el("div", "snip", c.snippet));
        details[String(c.n)] = d;
        li.appendChild(d);
        ol.appendChild(li);
      });
      box.appendChild(ol);
      msg.appendChild(box);
    }
    if (answer.ticket_id) this.showTicket(msg, answer.ticket_id, answer.ticket_token);
    this.feedbackRow(msg, answer);
  };

  Widget.prototype.showTicket = function (msg, ticketId, token) {
    var t = el("div", "ticket");
    t.appendChild(el("b", "ticket-id", T.ticket + " #" + ticketId));
    t.appendChild(document.createTextNode(" · " + T.waiting));
    msg.appendChild(t);
    this.poll(ticketId, token, POLL_MS);
  };

  // the ticket is read with the token that came with the answer that opened it (the number alone reads nothing)
  Widget.prototype.poll = function (ticketId, token, delay) {
    var self = this;
    setTimeout(async function () {
      try {
        var url = BASE + "/api/tickets/" + encodeURIComponent(ticketId) + "?token=" + encodeURIComponent(token || "");
        var res = await fetch(url, { headers: headers(false) });
        if (res.ok) {
          var t = await res.json();
          if (t.answer && (t.status === "answered" || t.status === "closed")) {
            var m = el("div", "msg agent");
            m.dataset.ticket = ticketId;
            m.appendChild(el("span", "label", T.agent + " · " + T.ticket + " #" + ticketId));
            m.appendChild(el("span", "text", t.answer));
            self.log.appendChild(m);
            self.scroll();
            return;
          }
        } else if (res.status === 404 || res.status === 401 || res.status === 403) {
          return; // nothing to wait for
        }
      } catch (e) { /* offline for a moment: keep polling */ }
      self.poll(ticketId, token, Math.min(delay * 1.5, 60000));
    }, delay);
  };

  Widget.prototype.feedbackRow = function (msg, answer) {
    var self = this;
    var row = el("div", "fb");
    var up = el("button", "up", "👍");
    var down = el("button", "down", "👎");
    up.title = T.up; up.setAttribute("aria-label", T.up);
    down.title = T.down; down.setAttribute("aria-label", T.down);
    row.appendChild(up);
    row.appendChild(down);
    msg.appendChild(row);

    function send(rating, comment) {
      row.textContent = "";
      var done = el("span", "done", T.thanks);
      row.appendChild(done);
      fetch(BASE + "/api/feedback", {
        method: "POST", headers: headers(true),
        body: JSON.stringify({ answer_id: answer.id, rating: rating, comment: comment || "", session_id: self.session })
      }).then(function (res) {
        if (!res.ok) return errorMessage(res).then(function (m) { done.className = "done err"; done.textContent = T.error + m; });
        return res.json().then(function (fb) {
          if (fb.ticket_id && fb.ticket_id !== answer.ticket_id) self.showTicket(msg, fb.ticket_id, fb.ticket_token);
        });
      }).catch(function (e) { done.textContent = T.error + e.message; });
    }
    up.addEventListener("click", function () { send("up"); });
    down.addEventListener("click", function () {
      row.textContent = "";
      var box = el("textarea", "comment");
      box.placeholder = T.comment;
      var submit = el("button", "submit", T.sendFeedback);
      row.appendChild(box);
      row.appendChild(submit);
      box.focus();
      submit.addEventListener("click", function () { send("down", box.value.trim()); });
    });
  };

  function mount() { document.body.appendChild(new Widget().host); }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
