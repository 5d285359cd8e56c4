// The player: WebRTC from the server, captions and transcript over a data channel (which
// also carries the viewer's questions, ask.js), and the viewer's own measurements (TTFF,
// first speech, freezes, A/V skew) sent back.
(function () {
  const cfg = window.STREAMWISE || {};
  const episode = cfg.episode;
  // A share link's token goes with every call about this episode (private episodes need it).
  const shareQuery = cfg.share ? `?share=${encodeURIComponent(cfg.share)}` : "";
  const video = document.getElementById("video");
  const unmute = document.getElementById("unmute");
  const stateEl = document.getElementById("state");
  const statsEl = document.getElementById("stats");
  const captionEl = document.getElementById("caption");
  const linesEl = document.getElementById("lines");
  const titleEl = document.getElementById("title");
  titleEl.textContent = cfg.topic || "";
  if (cfg.created && history.replaceState) history.replaceState(null, "", `/watch/${episode}`);

  // performance.now() counts from navigation start: the TTFF definition.
  const m = { viewer: null, ttffSeconds: null, firstAudioSeconds: null, firstSpeechSeconds: null, marks: {} };
  const mark = (name) => { m.marks[name] = Math.round(performance.now()); };
  window.streamwiseMetrics = m;
  const now = () => performance.now() / 1000;

  // "Ask the hosts" (ask.js): over the data channel once it is open, the REST API before.
  const ask = window.streamwiseAskBox ? window.streamwiseAskBox({ episode, shareQuery }) : null;

  unmute.addEventListener("click", () => { video.muted = false; video.play(); unmute.hidden = true; });

  // Waiting in the server's admission queue: the stream shows the title card meanwhile.
  let queued = false;
  function onFirstFrame() {
    if (m.ttffSeconds === null) {
      m.ttffSeconds = now(); mark("firstFrame");
      if (!queued) stateEl.textContent = "playing";
    }
  }
  function aboutSeconds(s) {
    return s < 90 ? `${Math.max(1, Math.round(s))} s` : `${Math.round(s / 60)} min`;
  }
  function showQueue(msg) {
    queued = msg.position !== null && msg.position !== undefined;
    if (!queued) { stateEl.textContent = m.ttffSeconds !== null ? "playing" : "starting"; return; }
    if (msg.position === 1) {
      stateEl.textContent = "the server is busy: your episode is next" +
        (msg.starts_in_s ? `, starting in about ${aboutSeconds(msg.starts_in_s)}` : "");
    } else {
      const ahead = msg.position - 1;
      stateEl.textContent = `the server is busy: ${ahead} episode${ahead === 1 ? "" : "s"} ahead of yours`;
    }
  }
  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    video.requestVideoFrameCallback(onFirstFrame);
  } else {
    video.addEventListener("playing", onFirstFrame, { once: true });
  }

  // First speech: the received audio itself rising above silence. WebAudio hears the
  // stream even while the element is muted; inbound-rtp audioLevel stays 0 then.
  let speechCtx = null;
  function watchSpeech(stream) {
    try {
      speechCtx = new AudioContext();
      const analyser = speechCtx.createAnalyser();
      analyser.fftSize = 512;
      speechCtx.createMediaStreamSource(stream).connect(analyser);
      const buf = new Float32Array(analyser.fftSize);
      const tick = () => {
        if (m.firstSpeechSeconds !== null) { speechCtx.close(); return; }
        analyser.getFloatTimeDomainData(buf);
        let energy = 0;
        for (const x of buf) energy += x * x;
        if (Math.sqrt(energy / buf.length) > 0.01) { m.firstSpeechSeconds = now(); mark("firstSpeech"); }
        else setTimeout(tick, 10);
      };
      tick();
    } catch (err) { speechCtx = null; }
  }

  function showCaption(speaker, text) {
    // Without a running AudioContext (autoplay policy), the first spoken caption stands in.
    if (speaker && m.firstSpeechSeconds === null && (!speechCtx || speechCtx.state !== "running")) {
      m.firstSpeechSeconds = now(); mark("firstSpeech");
    }
    captionEl.replaceChildren();
    if (!speaker) return;
    const b = document.createElement("b"); b.textContent = speaker + ": ";
    captionEl.append(b, document.createTextNode(text));   // text nodes: captions are data, never markup
  }
  // Each segment's words in a span of their own: a segment cut short by a viewer's
  // question comes again ("amend") with the words the host said before the cut.
  function addLine(msg) {
    const sent = linesEl.querySelector(`span[data-index="${Number(msg.index)}"]`);
    if (msg.amend && sent) { sent.textContent = msg.text; return; }
    const span = document.createElement("span"); span.dataset.index = String(msg.index);
    span.textContent = msg.text;
    const last = linesEl.lastElementChild;
    if (last && last.dataset.line === String(msg.line)) {
      last.append(" ", span);
    } else {
      const li = document.createElement("li"); li.dataset.line = String(msg.line);
      const b = document.createElement("b"); b.textContent = msg.speaker + ": ";
      li.append(b, span); linesEl.append(li);
    }
    linesEl.parentElement.scrollTop = linesEl.parentElement.scrollHeight;
  }

  function waitForIce(pc, timeoutMs) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      pc.addEventListener("icegatheringstatechange", check);
      setTimeout(done, timeoutMs);
    });
  }

  async function start() {
    const pc = new RTCPeerConnection({ iceServers: cfg.iceServers || [] });
    window.streamwisePc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    // The viewer's microphone, for questions by voice (voice.js): negotiated now, silent
    // until the talk button puts a track on it.
    if (ask && ask.voiceCapable) ask.setMicrophone(pc.addTransceiver("audio", { direction: "sendonly" }).sender);
    const channel = pc.createDataChannel("captions");
    if (ask) ask.setChannel(channel);
    channel.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.type === "caption") showCaption(msg.speaker, msg.text);
      else if (msg.type === "line") addLine(msg);
      else if (msg.type === "queue") showQueue(msg);
      else if (msg.type === "ended") stateEl.textContent = "ended";
      if (ask && ["question", "question_error", "voice", "ended"].includes(msg.type)) ask.onMessage(msg);
    };
    const stream = new MediaStream();
    pc.ontrack = (ev) => {
      stream.addTrack(ev.track);
      if (ev.track.kind === "audio") watchSpeech(new MediaStream([ev.track]));
      if (video.srcObject !== stream) video.srcObject = stream;
      video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      mark(pc.connectionState);
      if (pc.connectionState === "failed") stateEl.textContent = "connection failed: reload the page to retry";
    };
    mark("start");
    await pc.setLocalDescription(await pc.createOffer());
    mark("offer");
    // aiortc does not trickle ICE, but needs none of our candidates: it learns our address
    // from our connectivity checks (peer-reflexive). Waiting for gathering only adds delay.
    if (cfg.iceWaitMs) await waitForIce(pc, cfg.iceWaitMs);
    mark("ice");
    const res = await fetch(`/api/episodes/${episode}/offer${shareQuery}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new Error(body.detail || `server answered ${res.status}`);
    }
    const answer = await res.json();
    mark("answer");
    m.viewer = answer.viewer;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    addEventListener("pagehide", () => { report(pc, true); pc.close(); });
    poll(pc);
  }

  let lastReport = 0;
  async function collect(pc) {
    const stats = await pc.getStats();
    let v = null, a = null;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") v = s;
      if (s.type === "inbound-rtp" && s.kind === "audio") a = s;
    });
    if (v) {
      m.framesDecoded = v.framesDecoded; m.freezeCount = v.freezeCount || 0;
      m.totalFreezesDuration = v.totalFreezesDuration || 0; m.framesPerSecond = v.framesPerSecond || 0;
      if (v.framesDecoded > 0 && m.ttffSeconds === null) onFirstFrame();
    }
    if (a) {
      m.concealedSamples = a.concealedSamples; m.totalSamplesReceived = a.totalSamplesReceived;
      if (a.totalSamplesReceived > 0 && m.firstAudioSeconds === null) m.firstAudioSeconds = now();
      m.playedSeconds = (a.totalSamplesDuration || 0);
    }
    if (v && a && v.estimatedPlayoutTimestamp && a.estimatedPlayoutTimestamp) {
      m.avSkewMs = v.estimatedPlayoutTimestamp - a.estimatedPlayoutTimestamp;
    }
    statsEl.textContent = `${m.framesDecoded || 0} frames · ${m.freezeCount || 0} freezes` +
      (m.ttffSeconds !== null ? ` · first frame ${m.ttffSeconds.toFixed(2)} s` : "");
  }
  function report(pc, final) {
    const body = JSON.stringify(Object.fromEntries(Object.entries(m).filter(([, x]) => x !== null && x !== undefined)));
    if (final && navigator.sendBeacon) {
      navigator.sendBeacon(`/api/episodes/${episode}/viewer-stats${shareQuery}`, new Blob([body], { type: "application/json" }));
      return;
    }
    fetch(`/api/episodes/${episode}/viewer-stats${shareQuery}`, { method: "POST", headers: { "Content-Type": "application/json" }, body }).catch(() => {});
  }
  async function poll(pc) {
    const started = now();
    while (pc.connectionState !== "closed") {
      try { await collect(pc); } catch (err) { /* stats are best effort */ }
      if (now() - lastReport > 2) { lastReport = now(); report(pc, false); }
      // Fine-grained early on, to time the first frame and first speech precisely.
      await new Promise((r) => setTimeout(r, now() - started < 6 ? 50 : 1000));
    }
  }

  start().catch((err) => { stateEl.textContent = `could not start: ${err.message}`; });
})();
