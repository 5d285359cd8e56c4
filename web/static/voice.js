// Asking the hosts by voice: the talk button next to "Ask the hosts". Hold it (mouse, touch,
// or Space/Enter) and let go to send; or tap it to start and tap again to send; Escape drops
// the question. The microphone goes over the player's own WebRTC connection, on the audio
// transceiver player.js offers to send on: the track is put on it only while listening
// (RTCRtpSender.replaceTrack, no renegotiation), and "voice_start" / "voice_end" on the data
// channel mark the question. The server recognises it and asks it as if typed; its
// {"type": "voice"} messages say where it stands (server/transport/listening.py).
// ask.js creates the button (window.streamwiseVoiceButton) and hands it the messages.
(function () {
  // A press shorter than this is a tap: listen until the next tap.
  const TAP_MS = 350;
  // The microphone stays on this long after "voice_end": the last words are still on their way.
  const TAIL_MS = 250;
  // No word from the server this long after "voice_end" (the connection dropped): give up.
  const ANSWER_TIMEOUT_MS = 45000;
  const IDLE_LABEL = "Hold to talk";
  const HOW = "Hold to ask by voice and let go to send, or tap to start and tap again to send (Space or Enter " +
    "from the keyboard; Escape drops it). The page asks for your microphone the first time.";

  function micProblem(err) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return ["Microphone blocked", "The microphone is blocked for this page: allow it in the browser's site " +
        "settings to ask by voice, or type your question."];
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "NotReadableError") {
      return ["No microphone", "No microphone could be opened: connect one to ask by voice, or type your question."];
    }
    return ["No microphone", `The microphone could not start (${name || err}); type your question instead.`];
  }

  window.streamwiseVoiceButton = function (opts) {
    const button = opts.button;
    let sender = null;  // the RTCRtpSender the microphone goes out on
    let stream = null;
    // idle | starting | listening | ending | recognising | unavailable
    let mode = "idle";
    let latched = false;  // tapped: listening until the next tap
    let pressedAt = 0;
    let allowed = true;  // ask.js: questions can be asked now (not closed, no wait)
    let utterances = 0;  // counts "voice_end"s: a late timeout must not end a later question

    function show(label, disabled) {
      button.textContent = label;
      button.disabled = disabled;
      button.setAttribute("aria-pressed", String(mode === "starting" || mode === "listening"));
      button.classList.toggle("live", mode === "listening");
    }
    function idle() {
      mode = "idle"; latched = false;
      show(IDLE_LABEL, !allowed);
    }
    function unavailable(label, why) {
      stopMic();
      mode = "unavailable";
      button.title = why;
      show(label, true);
      opts.say(why, true);
    }
    function stopMic() {
      if (sender) sender.replaceTrack(null).catch(() => {});
      if (stream) stream.getTracks().forEach((t) => t.stop());
      stream = null;
    }

    async function begin() {
      mode = "starting";
      show("Starting…", false);
      opts.say("starting the microphone…", false);
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        });
      } catch (err) { unavailable(...micProblem(err)); return; }
      if (mode !== "starting") { stopMic(); return; }  // dropped meanwhile
      try {
        await sender.replaceTrack(stream.getAudioTracks()[0]);
      } catch (err) {
        stopMic(); idle(); opts.say("could not send the microphone; type your question", true); return;
      }
      if (mode !== "starting") { stopMic(); return; }
      if (!opts.send({ type: "voice_start" })) {
        stopMic(); idle(); opts.say("voice questions work once the video plays; type your question", true);
      }
      // The server answers "listening" (or why not): see onMessage.
    }
    function finish() {
      if (mode === "starting") { drop(); return; }
      mode = "ending";
      opts.send({ type: "voice_end", name: opts.name() });
      setTimeout(stopMic, TAIL_MS);
      const utterance = ++utterances;
      setTimeout(() => {
        if (utterance !== utterances || (mode !== "ending" && mode !== "recognising")) return;
        idle(); opts.say("the server did not answer; try again or type your question", true);
      }, ANSWER_TIMEOUT_MS);
      show("Recognising…", true);
      opts.say("recognising…", false);
    }
    function drop() {
      if (mode !== "starting" && mode !== "listening") return;
      opts.send({ type: "voice_cancel" });
      stopMic(); idle(); opts.say("", false);
    }

    function press() {
      if (button.disabled) return;
      if (mode === "starting" || mode === "listening") { if (latched) finish(); return; }
      if (mode !== "idle") return;
      if (!sender) { opts.say("the video is still connecting; try again in a moment, or type your question", true); return; }
      pressedAt = performance.now(); latched = false;
      begin();
    }
    function release() {
      if ((mode !== "starting" && mode !== "listening") || latched) return;
      // A tap, or a hold that ended before the microphone was on (the first time the browser
      // asks for it): keep listening until the next tap.
      if (mode === "starting" || performance.now() - pressedAt < TAP_MS) {
        latched = true;
        if (mode === "listening") { show("● Tap to send", false); opts.say("listening… tap again to send", false); }
        return;
      }
      finish();
    }

    // This show takes typed questions only.
    function off(reason) {
      drop();
      mode = "unavailable";
      button.hidden = true;
      button.title = reason;
    }

    button.title = HOW;
    button.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      ev.preventDefault();
      try { button.setPointerCapture(ev.pointerId); } catch (err) { /* released already */ }
      press();
    });
    button.addEventListener("pointerup", release);
    button.addEventListener("pointercancel", release);
    button.addEventListener("contextmenu", (ev) => ev.preventDefault());  // a long press on a touch screen
    button.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") { drop(); return; }
      if (ev.key !== " " && ev.key !== "Enter") return;
      ev.preventDefault();
      if (!ev.repeat) press();
    });
    button.addEventListener("keyup", (ev) => {
      if (ev.key === " " || ev.key === "Enter") { ev.preventDefault(); release(); }
    });

    const capable = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.RTCRtpSender);
    if (!capable) {
      mode = "unavailable";
      button.title = "Asking by voice needs a microphone and a secure (https) page; type your question instead.";
      show("No microphone", true);
    } else {
      idle();
    }

    return {
      // The browser can send a microphone: player.js then offers an audio transceiver for it.
      capable,
      setSender(s) { sender = s; },
      // Questions can (or cannot) be asked now; one under way is dropped when they cannot.
      setAllowed(yes) {
        allowed = yes;
        if (!yes) drop();
        if (mode === "idle") idle();
      },
      off,
      onMessage(msg) {
        if (msg.type === "question_error") {  // refused before listening: the question, not the voice
          if (mode === "starting" || mode === "listening") { stopMic(); idle(); }
          return;
        }
        if (msg.state === "listening" && mode === "starting") {
          mode = "listening";
          show(latched ? "● Tap to send" : "● Release to send", false);
          opts.say(latched ? "listening… tap again to send" : "listening… let go to send", false);
        } else if (msg.state === "recognising") {
          if (mode === "starting" || mode === "listening") stopMic();  // the server's limit was reached
          mode = "recognising";
          show("Recognising…", true);
          opts.say("recognising…", false);
        } else if (msg.state === "heard" || msg.state === "missed" || msg.state === "refused") {
          if (mode === "starting" || mode === "listening") stopMic();
          if (msg.state === "refused" && msg.status === 403) { off(msg.detail); opts.say(msg.detail, true); return; }
          if (mode !== "unavailable") idle();
          if (msg.state !== "heard") opts.say(msg.detail, true);
        }
      },
    };
  };
})();
