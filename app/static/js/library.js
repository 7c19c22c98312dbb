// The library: select several images to publish, unpublish or delete; a lightbox with keyboard navigation.
import { api, problem } from "./api.js";

const $ = (id) => document.getElementById(id);
const grid = $("library");
const boxes = () => [...document.querySelectorAll(".select-image")];
const chosen = () => boxes().filter((box) => box.checked);

function refresh() {
  const count = chosen().length;
  $("selected-count").textContent = `${count} selected`;
  for (const id of ["bulk-publish", "bulk-unpublish", "bulk-delete"]) $(id).disabled = count === 0;
  $("select-all").textContent = count && count === boxes().length ? "Select none" : "Select all";
}

// One request per image through the per-image API; the grid shows what happened to each.
async function each(work) {
  $("error-bulk").textContent = "";
  const failures = [];
  for (const box of chosen()) {
    const result = await work(box.value, box.closest(".image-card"));
    if (!result.ok) failures.push(problem(result).message);
    else box.checked = false;
  }
  if (failures.length) $("error-bulk").textContent = `${failures.length} not done: ${failures[0]}`;
  refresh();
}

if (grid) {
  grid.addEventListener("change", refresh);
  $("select-all").addEventListener("click", () => {
    const all = chosen().length !== boxes().length;
    for (const box of boxes()) box.checked = all;
    refresh();
  });
  for (const [id, value] of [["bulk-publish", true], ["bulk-unpublish", false]]) {
    $(id).addEventListener("click", () => each(async (imageId, card) => {
      const result = await api(`/api/v1/images/${imageId}`, { method: "PATCH", body: { public: value } });
      if (result.ok) card.dataset.public = String(value);
      return result;
    }));
  }
  $("bulk-delete").addEventListener("click", () => {
    const count = chosen().length;
    if (!window.confirm(`Delete ${count} image${count === 1 ? "" : "s"} and their files?`)) return;
    each(async (imageId, card) => {
      const result = await api(`/api/v1/images/${imageId}`, { method: "DELETE" });
      if (result.ok) card.remove();
      return result;
    });
  });
  refresh();
}

// Lightbox: a modal <dialog>; arrows move, Escape closes, Tab stays inside, focus returns to the opener.
const dialog = $("lightbox");
const cards = () => [...grid.querySelectorAll(".image-card")];
let current = -1;
let opener = null;

function show(index) {
  const list = cards();
  if (!list.length) return;
  current = (index + list.length) % list.length;
  const card = list[current];
  const thumb = card.querySelector("img");
  $("lightbox-image").src = card.dataset.url;
  $("lightbox-image").alt = thumb.alt;
  $("lightbox-caption").textContent = `${thumb.alt} (${current + 1} of ${list.length})`;
  $("lightbox-open").href = `/images/${card.dataset.imageId}`;
  dialog.dataset.imageId = card.dataset.imageId;
}

function close() {
  if (dialog.open) dialog.close();
}

if (grid && dialog) {
  grid.addEventListener("click", (event) => {
    const link = event.target.closest(".image-card > a");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    opener = link;
    show(cards().indexOf(link.closest(".image-card")));
    dialog.showModal();
    $("lightbox-close").focus();
  });
  dialog.addEventListener("close", () => { if (opener) opener.focus(); });
  $("lightbox-prev").addEventListener("click", () => show(current - 1));
  $("lightbox-next").addEventListener("click", () => show(current + 1));
  $("lightbox-close").addEventListener("click", close);
  dialog.addEventListener("click", (event) => { if (event.target === dialog) close(); });
  dialog.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") { event.preventDefault(); show(current - 1); }
    else if (event.key === "ArrowRight") { event.preventDefault(); show(current + 1); }
    else if (event.key === "Escape") { event.preventDefault(); close(); }
    else if (event.key === "Tab") {
      const focusable = [...dialog.querySelectorAll("button, a[href]")];
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
      else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
    }
  });
}
