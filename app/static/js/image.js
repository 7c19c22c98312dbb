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
  if (result.ok) $("share-url").textContent = result.data.url;
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

$("edit-form")?.addEventListener("submit", async (event) => {
  event.preventDefault();
  for (const name of ["edit-prompt", "edit-mask", "edit-form"]) $(`error-${name}`).textContent = "";
  const mode = $("edit-mode").value;
  const body = { image_id: id, mode, prompt: $("edit-prompt").value };
  if (mode !== "instruct") body.strength = Number($("edit-strength").value);
  const mask = $("edit-mask").files[0];
  if (mode === "inpaint") {
    if (!mask) { $("error-edit-mask").textContent = "Choose a mask image for inpainting."; return; }
    body.mask = await fileBase64(mask);
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
  } finally {
    $("edit-button").disabled = false;
  }
});
