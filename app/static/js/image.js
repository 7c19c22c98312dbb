// The image page: like, publish, share, delete, variations, upscale and edits through the JSON API.
import { api, imageCard, newKey, problem } from "./api.js";

const $ = (id) => document.getElementById(id);
const view = $("image-view");
const id = view.dataset.imageId;

function say(result, target = "error-actions") {
  const el = $(target);
  if (el) el.textContent = result.ok ? "" : problem(result).message;
}

async function busy(work) {
  const progress = $("progress");
  if (progress) progress.hidden = false;
  try { return await work(); } finally { if (progress) progress.hidden = true; }
}

function showNew(images) {
  const results = $("results");
  for (const image of images) results.prepend(imageCard(image));
}

async function toggle(button, field, on, off) {
  const next = button.getAttribute("aria-pressed") !== "true";
  const result = await api(`/api/v1/images/${id}`, { method: "PATCH", body: { [field]: next } });
  say(result);
  if (result.ok) {
    button.setAttribute("aria-pressed", String(next));
    button.textContent = next ? on : off;
  }
}

$("like")?.addEventListener("click", (e) => toggle(e.currentTarget, "liked", "Unlike", "Like"));
$("publish")?.addEventListener("click", (e) => toggle(e.currentTarget, "public", "Unpublish", "Publish"));

$("share")?.addEventListener("click", async () => {
  const result = await api("/api/v1/links", { method: "POST", body: { image_id: id } });
  say(result);
  if (result.ok) {
    $("share-url").textContent = result.data.url;
    $("share-box").hidden = false;
  }
});

$("delete")?.addEventListener("click", async () => {
  if (!window.confirm("Delete this image and its files?")) return;
  const result = await api(`/api/v1/images/${id}`, { method: "DELETE" });
  say(result);
  if (result.ok) window.location.assign("/library");
});

for (const [buttonId, path] of [["variations", "variations"], ["upscale", "upscale"]]) {
  $(buttonId)?.addEventListener("click", async () => {
    const result = await busy(() => api(`/api/v1/images/${id}/${path}`, {
      method: "POST", body: {}, headers: { "Idempotency-Key": newKey() },
    }));
    say(result);
    if (result.ok) showNew(result.data.images);
  });
}

function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",")[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// The mask: white strokes on a transparent canvas laid over the image, exported as white on black PNG.
const canvas = $("mask-canvas");
let painted = false;
if (canvas) {
  const ctx = canvas.getContext("2d");
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  };
  const stroke = (from, to) => {
    ctx.globalCompositeOperation = $("mask-erase").checked ? "destination-out" : "source-over";
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = Number($("brush-size").value);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
    if (!$("mask-erase").checked) painted = true;
  };
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    stroke(last, next);
    last = next;
  });
  for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, () => { last = null; });
  $("mask-clear").addEventListener("click", () => {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    painted = false;
  });
}

function maskBase64() {
  const out = document.createElement("canvas");
  out.width = canvas.width;
  out.height = canvas.height;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.drawImage(canvas, 0, 0);
  return out.toDataURL("image/png").split(",")[1];
}

function showMode() {
  const mode = $("edit-mode").value;
  $("mask-editor").hidden = mode !== "inpaint";
  $("strength-field").hidden = mode === "instruct";
}
$("edit-mode")?.addEventListener("change", showMode);
$("edit-strength")?.addEventListener("input", () => { $("strength-value").textContent = $("edit-strength").value; });
if ($("edit-mode")) showMode();

$("edit-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  for (const name of ["edit-prompt", "edit-mask", "edit-form"]) $(`error-${name}`).textContent = "";
  const mode = $("edit-mode").value;
  const body = { image_id: id, mode, prompt: $("edit-prompt").value };
  if (mode !== "instruct") body.strength = Number($("edit-strength").value);
  if (mode === "inpaint") {
    const file = $("edit-mask").files[0];
    if (painted) body.mask = maskBase64();
    else if (file) body.mask = await fileBase64(file);
    else { $("error-edit-mask").textContent = "Paint over the part to repaint (or upload a mask) first."; return; }
  }
  $("edit-button").disabled = true;
  try {
    const result = await busy(() => api("/api/v1/images/edits", {
      method: "POST", body, headers: { "Idempotency-Key": newKey() },
    }));
    if (!result.ok) {
      const { message, field } = problem(result);
      ($(`error-edit-${field}`) || $("error-edit-form")).textContent = message;
      return;
    }
    showNew(result.data.images);
  } catch (error) {
    $("error-edit-form").textContent = "Could not reach the server. Check your connection and try again.";
  } finally {
    $("edit-button").disabled = false;
  }
});
