// The generate page: live price quote, dice for the seed, progress while waiting, results in place.
import { api, imageCard, newKey, problem } from "./api.js";

const form = document.getElementById("generate-form");
const $ = (id) => document.getElementById(id);
const fields = ["prompt", "negative_prompt", "model", "width", "n", "steps", "guidance", "scheduler", "seed", "form"];

function request() {
  const size = Number($("size").value);
  const body = {
    prompt: $("prompt").value, model: $("model").value, width: size, height: size, n: Number($("n").value),
    steps: Number($("steps").value), guidance: Number($("guidance").value), scheduler: $("scheduler").value,
  };
  if ($("negative_prompt").value.trim()) body.negative_prompt = $("negative_prompt").value;
  if ($("seed").value !== "") body.seed = Number($("seed").value);
  return body;
}

function clearErrors() {
  for (const name of fields) { const el = $(`error-${name}`); if (el) el.textContent = ""; }
}

function showError(result) {
  const { message, field } = problem(result);
  const target = (field && $(`error-${field}`)) || $("error-form");
  target.textContent = message;
}

let quoteTimer;
async function quote() {
  const body = request();
  const result = await api("/api/v1/credits/quote", {
    method: "POST",
    body: { kind: "image", model: body.model, width: body.width, height: body.height, steps: body.steps, images: body.n },
  });
  if (result.ok) {
    $("price-value").textContent = result.data.cost;
    $("price-balance").textContent = `(you have ${result.data.balance}${result.data.affordable ? "" : " — not enough"})`;
  } else {
    $("price-value").textContent = "–";
    $("price-balance").textContent = problem(result).message;
  }
}
form.addEventListener("input", () => { clearTimeout(quoteTimer); quoteTimer = setTimeout(quote, 250); });
form.addEventListener("change", () => { clearTimeout(quoteTimer); quoteTimer = setTimeout(quote, 50); });

$("dice").addEventListener("click", () => {
  $("seed").value = String(Math.floor(Math.random() * 2 ** 32));
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  if (!$("prompt").value.trim()) { $("error-prompt").textContent = "Write a prompt first."; return; }
  const button = $("generate-button");
  button.disabled = true;
  $("progress").hidden = false;
  const started = Date.now();
  const ticker = setInterval(() => { $("elapsed").textContent = Math.round((Date.now() - started) / 1000); }, 500);
  try {
    const result = await api("/api/v1/images/generations", {
      method: "POST", body: request(), headers: { "Idempotency-Key": newKey() },
    });
    if (!result.ok) { showError(result); return; }
    const results = $("results");
    for (const image of result.data.images.slice().reverse()) results.prepend(imageCard(image));
    quote();
  } catch (error) {
    $("error-form").textContent = "Could not reach the server. Check your connection and try again.";
  } finally {
    clearInterval(ticker);
    $("progress").hidden = true;
    button.disabled = false;
  }
});

quote();
