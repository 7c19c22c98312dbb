// Audio and video project pages: talk to the JSON API with the session cookie (JSON bodies; the CSRF token for
// multipart uploads), draw waveforms and the schedule curve, and poll render progress.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  async function api(method, path, body) {
    const options = { method, headers: { "X-CSRFToken": csrf }, credentials: "same-origin" };
    if (body instanceof FormData) options.body = body;
    else if (body !== undefined) { options.body = JSON.stringify(body); options.headers["Content-Type"] = "application/json"; }
    const response = await fetch(path, options);
    const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `request failed (${response.status})`);
    return data;
  }

  function show(id, text) { const el = document.getElementById(id); if (el) el.textContent = text; }

  function drawWaveform(canvas) {
    const peaks = JSON.parse(canvas.dataset.peaks || "[]");
    const ctx = canvas.getContext("2d"), mid = canvas.height / 2, step = canvas.width / Math.max(peaks.length, 1);
    ctx.fillStyle = "#4f46e5";
    peaks.forEach((p, i) => { const h = Math.max(1, p * mid); ctx.fillRect(i * step, mid - h, Math.max(1, step - 1), 2 * h); });
  }

  // ---------------------------------------------------------------- audio page
  document.querySelectorAll("canvas.waveform").forEach(drawWaveform);
  const upload = document.getElementById("audio-upload");
  if (upload) upload.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("upload-error", "");
    try { await api("POST", "/api/v1/audio/uploads", new FormData(upload)); location.reload(); }
    catch (error) { show("upload-error", error.message); }
  });
  const generate = document.getElementById("audio-generate");
  if (generate) generate.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("generate-error", "");
    const form = new FormData(generate), body = { prompt: form.get("prompt"), duration: Number(form.get("duration")) };
    if (form.get("continue_from")) body.continue_from = form.get("continue_from");
    try { await api("POST", "/api/v1/audio/generations", body); location.reload(); }
    catch (error) { show("generate-error", error.message); }
  });
  document.querySelectorAll(".clip").forEach((item) => {
    const id = item.dataset.id;
    const del = item.querySelector(".delete-clip");
    if (del) del.addEventListener("click", async () => { if (confirm("Delete this clip?")) { await api("DELETE", `/api/v1/audio/${id}`); item.remove(); } });
    if (["queued", "processing"].includes(item.dataset.status)) {
      const timer = setInterval(async () => {
        const clip = await api("GET", `/api/v1/audio/${id}`);
        if (!["queued", "processing"].includes(clip.status)) { clearInterval(timer); location.reload(); }
      }, 2000);
    }
  });
  document.querySelectorAll("button.share").forEach((button) => button.addEventListener("click", async () => {
    const item = button.closest("[data-id]");
    try {
      const link = await api("POST", "/api/v1/links", { [button.dataset.kind]: item.dataset.id });
      item.querySelector(".share-url").textContent = link.url || link.share_url || "";
    } catch (error) { item.querySelector(".share-url").textContent = error.message; }
  }));

  // ---------------------------------------------------------------- videos page
  const create = document.getElementById("project-create");
  if (create) create.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("create-error", "");
    const form = new FormData(create);
    try {
      const project = await api("POST", "/api/v1/video-projects", {
        audio_id: form.get("audio_id"), prompts: [{ at: 0, prompt: form.get("prompt"), seed: 1 }],
        width: 256, height: 256, steps: 20 });
      location.href = `/videos/projects/${project.id}`;
    } catch (error) { show("create-error", error.message); }
  });

  // ---------------------------------------------------------------- project page
  const root = document.getElementById("project");
  if (!root) return;
  const id = root.dataset.id, base = `/api/v1/video-projects/${id}`;
  const rows = document.querySelector("#prompt-rows tbody");

  function addRow(p) {
    const tr = document.createElement("tr");
    tr.innerHTML = '<td><input type="number" step="0.01" min="0" class="p-at" aria-label="At (seconds)"></td>' +
      '<td><input type="text" class="p-prompt" aria-label="Prompt"></td>' +
      '<td><input type="number" min="0" class="p-seed" aria-label="Seed"></td>' +
      '<td><button type="button" class="link-button p-remove">Remove</button></td>';
    tr.querySelector(".p-at").value = p.at; tr.querySelector(".p-prompt").value = p.prompt; tr.querySelector(".p-seed").value = p.seed;
    tr.querySelector(".p-remove").addEventListener("click", () => tr.remove());
    rows.appendChild(tr);
  }
  JSON.parse(document.getElementById("project-prompts").textContent).forEach(addRow);
  document.getElementById("add-prompt").addEventListener("click", () => {
    const last = [...rows.querySelectorAll(".p-at")].map((i) => Number(i.value)).pop() || 0;
    addRow({ at: last + 1, prompt: "", seed: rows.children.length + 1 });
  });
  const number = (name) => Number(document.getElementById(name).value);
  function edits() {
    return {
      prompts: [...rows.children].map((tr) => ({ at: Number(tr.querySelector(".p-at").value),
        prompt: tr.querySelector(".p-prompt").value, seed: Number(tr.querySelector(".p-seed").value) })),
      width: number("p-width"), height: number("p-height"), steps: number("p-steps"), fps: number("p-fps"), smooth: number("p-smooth"),
      start_image_id: document.getElementById("p-start-image").value || null, start_strength: number("p-start-strength"),
    };
  }
  const startImage = document.getElementById("p-start-image"), startPreview = document.getElementById("start-image-preview");
  function showStartImage() {
    const option = startImage.selectedOptions[0];
    startPreview.hidden = !startImage.value;
    if (startImage.value) startPreview.src = option.dataset.thumbnail;
  }
  startImage.addEventListener("change", showStartImage);
  showStartImage();
  document.getElementById("project-edit").addEventListener("submit", async (event) => {
    event.preventDefault();
    show("edit-error", "");
    try { await api("PATCH", base, edits()); show("edit-error", ""); await preview(); render(await api("GET", base)); }
    catch (error) { show("edit-error", error.message); }
  });

  async function preview() {
    const curve = await api("GET", `${base}/schedule`);
    const canvas = document.getElementById("schedule-curve"), ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const n = curve.points.length, top = Math.max(1, ...curve.points.map((p) => p.position + (p.t > 0 ? 0 : 0))) + 0.05;
    ctx.strokeStyle = "#4f46e5"; ctx.lineWidth = 2; ctx.beginPath();
    curve.points.forEach((p, i) => {
      const x = (i / Math.max(n - 1, 1)) * (canvas.width - 10) + 5, y = canvas.height - 5 - (p.position / top) * (canvas.height - 10);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
    canvas.dataset.points = String(n);
  }
  document.getElementById("preview-button").addEventListener("click", () => preview().catch((e) => show("render-error", e.message)));

  let timer = null;
  function render(state) {
    root.dataset.status = state.status;
    show("project-status", state.status);
    const bar = document.getElementById("render-progress");
    bar.max = state.progress.frames_total || 1; bar.value = state.progress.frames_done;
    const eta = state.progress.eta_seconds;
    show("render-text", `${state.progress.frames_done} / ${state.progress.frames_total} frames` +
      (state.status === "rendering" && eta !== null ? ` · about ${Math.ceil(eta)} s left` : "") +
      (state.credits_quoted ? ` · ${state.credits_used} of ${state.credits_quoted} credits` : ""));
    show("render-error", state.failure_reason || "");
    const busy = ["queued", "rendering"].includes(state.status);
    document.getElementById("render-button").disabled = busy;
    document.getElementById("cancel-button").disabled = !busy;
    const watch = document.getElementById("watch");
    if (state.video && !watch.dataset.video) {
      watch.dataset.video = state.video.id;
      watch.innerHTML = `<video id="watch-video" controls width="${state.video.width}" poster="${state.video.poster_url}" src="${state.video.url}"></video>` +
        `<p><a id="download-video" href="${state.video.download_url}">Download MP4</a> · <button type="button" class="secondary share" id="share-video">Share</button> <span class="share-url" id="video-share-url"></span></p>`;
      document.getElementById("share-video").addEventListener("click", async () => {
        const link = await api("POST", "/api/v1/links", { video_id: state.video.id });
        show("video-share-url", link.url || link.share_url || "");
      });
    }
    if (busy && !timer) timer = setInterval(async () => render(await api("GET", base)), 1000);
    if (!busy && timer) { clearInterval(timer); timer = null; }
  }
  document.getElementById("render-button").addEventListener("click", async () => {
    show("render-error", "");
    try { await api("PATCH", base, edits()); render(await api("POST", `${base}/render`, {})); }
    catch (error) { show("render-error", error.message); }
  });
  document.getElementById("cancel-button").addEventListener("click", async () => render(await api("POST", `${base}/cancel`)));
  document.getElementById("delete-project").addEventListener("click", async () => {
    if (confirm("Delete this project?")) { await api("DELETE", base); location.href = "/videos"; }
  });
  api("GET", base).then(render);
}());
