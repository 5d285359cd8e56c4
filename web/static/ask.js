// "Ask the hosts": the viewer's questions, sent over the player's data channel (or the REST
// API while it is not open), and where each one stands, as the server reports it.
// player.js creates the box (window.streamwiseAskBox) and hands it the data channel, the
// microphone's sender, and every "question" / "question_error" / "voice" / "ended" message.
// Asking by voice is voice.js's talk button; its words come back as a question like these.
(function () {
  const FINAL = new Set(["answered", "declined"]);

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }

  function standing(q) {
    if (q.status === "queued") return "queued: the hosts will read it out soon";
    if (q.status === "answering") return q.media_s === null ? "being answered" : `being answered at ${clock(q.media_s)}`;
    if (q.status === "answered") return q.media_s === null ? "answered" : `answered at ${clock(q.media_s)}`;
    return `declined: ${q.reason || "not answered"}`;
  }

  window.streamwiseAskBox = function (opts) {
    const box = document.getElementById("ask");
    const text = document.getElementById("ask-text");
    const name = document.getElementById("ask-name");
    const send = document.getElementById("ask-send");
    const statusEl = document.getElementById("ask-status");
    const listEl = document.getElementById("ask-mine");
    const talk = document.getElementById("ask-talk");
    const base = `/api/episodes/${opts.episode}/questions`;
    const mine = new Map();  // question id -> the latest we know of it
    let channel = null;
    let waitUntil = 0;  // a 429's Retry-After, as performance.now() milliseconds
    let closed = null;  // why no question can be asked any more
    let heard = null;  // the words of a spoken question, until the server answers it

    function say(message, error) {
      statusEl.textContent = message;
      statusEl.classList.toggle("error", !!error);
    }
    const voice = talk && window.streamwiseVoiceButton ? window.streamwiseVoiceButton({
      button: talk, say,
      name: () => name.value.trim() || null,
      send(message) {
        if (!channel || channel.readyState !== "open") return false;
        channel.send(JSON.stringify(message));
        return true;
      },
    }) : null;
    function render() {
      listEl.replaceChildren();
      for (const q of mine.values()) {
        const li = document.createElement("li");
        li.dataset.status = q.status;
        const quote = document.createElement("q"); quote.textContent = q.text;  // text nodes: data, never markup
        li.append(quote, document.createTextNode(` ${standing(q)}`));
        listEl.append(li);
      }
    }
    function refreshButton() {
      const wait = Math.ceil((waitUntil - performance.now()) / 1000);
      send.disabled = closed !== null || wait > 0;
      if (voice) voice.setAllowed(!send.disabled);
      if (wait > 0) { send.textContent = `Ask again in ${wait} s`; setTimeout(refreshButton, 500); }
      else send.textContent = "Ask";
    }
    function close(reason) {
      closed = reason;
      text.disabled = name.disabled = true;
      refreshButton();
      say(reason, false);
    }
    function off(reason) {
      close(reason);
      box.classList.add("off");
    }

    // ``poll``: asked over the REST API, so nothing is pushed about it: look it up instead.
    function onQuestion(q, poll) {
      const asked = !mine.has(q.id);
      mine.set(q.id, q);
      render();
      if (!asked) return;
      if (heard === null) text.value = "";
      say(heard === null ? "Sent. Where it stands:" : `Heard “${heard}”: sent. Where it stands:`, false);
      heard = null;
      if (poll) follow(q.id);
    }
    function onError(status, detail, retryAfter) {
      if (status === 403) { off(detail); return; }
      // 409: over for good (finished, cut short), or not started yet: the episode says which.
      if (status === 409) loadState();
      if (status === 429 && retryAfter) { waitUntil = performance.now() + retryAfter * 1000; refreshButton(); }
      const why = detail || `the server answered ${status}`;
      say(heard === null ? why : `Heard “${heard}”, but ${why}`, true);
      heard = null;
    }

    // A question asked over the REST API is not pushed (the channel pushes only its own):
    // look at it every few seconds until it is answered or declined.
    async function follow(id) {
      while (mine.has(id) && !FINAL.has(mine.get(id).status)) {
        await new Promise((r) => setTimeout(r, 2000));
        try {
          const res = await fetch(`${base}/${id}${opts.shareQuery}`);
          if (!res.ok) return;
          mine.set(id, await res.json()); render();
        } catch (err) { return; }
      }
    }

    async function post(body) {
      try {
        const res = await fetch(`${base}${opts.shareQuery}`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        const answer = await res.json().catch(() => ({}));
        if (res.status === 202) onQuestion(answer, true);
        else onError(res.status, answer.detail, Number(res.headers.get("Retry-After")) || answer.retry_after_s);
      } catch (err) {
        say("could not reach the server; try again", true);
      }
    }

    function ask() {
      const question = text.value.trim();
      if (!question) { say("type a question first", true); text.focus(); return; }
      if (send.disabled) return;
      const body = { text: question, name: name.value.trim() || null };
      say("sending…", false);
      if (channel && channel.readyState === "open") {
        channel.send(JSON.stringify({ type: "ask", ...body }));
      } else {
        post(body);
      }
    }
    send.addEventListener("click", ask);
    text.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); ask(); } });

    // What the episode says about questions: off (and why), closed (and why), the length limit.
    function loadState() {
      fetch(`/api/episodes/${opts.episode}${opts.shareQuery}`).then((r) => (r.ok ? r.json() : null)).then((ep) => {
        const q = ep && ep.questions;
        if (!q) return;
        if (q.max_chars) text.maxLength = q.max_chars;
        if (!q.enabled) off(`Questions are off: ${q.disabled_reason}`);
        else if (q.closed) close(q.closed);
        if (voice && q.voice === false) voice.off("this show takes typed questions only");
      }).catch(() => {});
    }
    loadState();

    return {
      setChannel(ch) { channel = ch; },
      // Whether the page can send a microphone (player.js then offers a transceiver for it).
      voiceCapable: !!(voice && voice.capable),
      setMicrophone(sender) { if (voice) voice.setSender(sender); },
      onMessage(msg) {
        if (msg.type === "voice") {
          if (msg.state === "heard") heard = msg.text;
          if (voice) voice.onMessage(msg);
        } else if (msg.type === "question" && msg.mine) {
          onQuestion(msg, false);
        } else if (msg.type === "question_error") {
          if (voice) voice.onMessage(msg);
          onError(msg.status, msg.detail, msg.retry_after_s);
        } else if (msg.type === "ended" && closed === null) {
          close("The episode has ended: questions are closed.");
        }
      },
    };
  };
})();
