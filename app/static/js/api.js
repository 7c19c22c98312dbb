// JSON API calls from pages: the session cookie authenticates; multipart bodies carry the CSRF token.
const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

export async function api(path, { method = "GET", body, form, headers = {} } = {}) {
  const options = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (form) {
    options.body = form;
    options.headers["X-CSRFToken"] = csrf();
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, options);
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch { data = null; }
  }
  return { ok: response.ok, status: response.status, data };
}

// The message to show for a failed call, and the field it is about (if any).
export function problem(result) {
  const error = result.data?.error;
  if (error) return { message: error.message, field: error.field || null };
  return { message: `The server answered ${result.status}. Try again.`, field: null };
}

export function imageCard(image) {
  const item = document.createElement("li");
  item.className = "image-card";
  item.dataset.imageId = image.id;
  const link = document.createElement("a");
  link.href = `/images/${image.id}`;
  const img = document.createElement("img");
  img.src = image.thumbnail_url;
  img.alt = image.prompt || "generated image";
  img.width = 160;
  img.height = 160;
  img.loading = "lazy";
  link.append(img);
  const note = document.createElement("p");
  note.className = "hint";
  note.textContent = `${image.kind} · seed ${image.seed ?? "–"}`;
  item.append(link, note);
  return item;
}

export function newKey() {
  return (crypto.randomUUID && crypto.randomUUID()) || `${Date.now()}-${Math.random()}`;
}
