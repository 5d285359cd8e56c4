// The home page: start an episode, list existing ones.
(function () {
  const cfg = window.STREAMWISE || {};
  const error = document.getElementById("error");
  if (cfg.error) { error.textContent = cfg.error; error.hidden = false; }
  const list = document.getElementById("episodes");
  async function refresh() {
    try {
      const res = await fetch("/api/episodes");
      if (!res.ok) throw new Error(`server answered ${res.status}`);
      const data = await res.json();
      list.replaceChildren();
      if (!data.episodes.length) {
        const li = document.createElement("li"); li.className = "muted"; li.textContent = "No episodes yet.";
        list.append(li);
      }
      for (const ep of data.episodes) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = ep.urls.watch; a.textContent = ep.title;   // textContent: titles are data, never markup
        const meta = document.createElement("span"); meta.className = "muted";
        meta.textContent = ` · ${ep.status} · ${Math.round(ep.duration_s)} s`;
        li.append(a, meta); list.append(li);
      }
    } catch (err) {
      list.replaceChildren(Object.assign(document.createElement("li"), { className: "error", textContent: `Could not list episodes: ${err.message}` }));
    }
  }
  refresh();
  setInterval(refresh, 5000);
})();
