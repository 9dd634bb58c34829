// The seed article page, rendered from the Frontpage API with plain
// JavaScript: breadcrumb, title, date, body, the veryGood! reaction with its
// count, and the Related, Ranking and Recommendation boxes for a reader id
// kept in local storage. Open /reader/?article=<id or slug>; without one it
// shows the newest article.
"use strict";

// Relative to this page (at /reader/), so that it works behind a proxy that
// serves the API under a path.
const API = "../api/v1";
const REACTION = "very_good";

/** The anonymous reader id this browser keeps. */
function readerId() {
  let id = localStorage.getItem("frontpage-reader");
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    id = "r-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("frontpage-reader", id);
  }
  return id;
}

/** JSON from the API; a problem+json answer becomes an Error with its detail. */
async function api(path, options = {}) {
  const response = await fetch(API + path, {
    ...options,
    headers: { accept: "application/json", ...(options.body ? { "content-type": "application/json" } : {}) },
  });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    throw new Error(body && body.detail ? body.detail : `HTTP ${response.status}`);
  }
  return body;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function articleLink(article) {
  return el("a", { href: `?article=${encodeURIComponent(article.slug)}` }, article.title);
}

/** Fills a feed box with items, or says that it is empty. */
function fill(id, items, describe) {
  const list = document.getElementById(id);
  list.replaceChildren(
    ...(items.length ? items.map((item) => el("li", {}, ...describe(item))) : [el("li", { class: "empty" }, "Nothing yet.")]),
  );
  list.dataset.count = String(items.length);
}

function renderReaction(label, count, reacted) {
  const button = document.getElementById("react");
  document.getElementById("react-label").textContent = label;
  document.getElementById("react-count").textContent = String(count);
  button.setAttribute("aria-pressed", String(reacted));
  button.disabled = false;
}

async function main() {
  const reader = readerId();
  document.getElementById("reader").textContent = reader;
  let key = new URLSearchParams(location.search).get("article");
  if (!key) {
    const latest = await api("/articles?limit=1");
    if (!latest.data.length) throw new Error("There are no articles yet.");
    key = latest.data[0].slug;
  }
  const [page, given] = await Promise.all([
    api(`/articles/${encodeURIComponent(key)}?include=related,ranking,recommendations&reader=${reader}`),
    // What this reader gave, kept by the server: the same on every device.
    api(`/articles/${encodeURIComponent(key)}/reactions?reader=${reader}`),
  ]);
  const article = page.data;
  document.title = `${article.title} · Frontpage`;
  document.getElementById("breadcrumb").replaceChildren(
    ...article.breadcrumb.map((crumb) => el("li", {}, crumb.name)),
  );
  document.getElementById("title").textContent = article.title;
  const date = document.getElementById("date");
  date.dateTime = article.published_at;
  date.textContent = new Date(article.published_at).toLocaleString();
  document.getElementById("author").textContent = article.author ? `· ${article.author.name}` : "";
  // Sanitised by the server on the way in: only safe tags and attributes.
  document.getElementById("body").innerHTML = article.body_html;
  const kind = page.meta.reaction_kinds.find((k) => k.key === REACTION);
  const label = kind ? kind.label : "veryGood!";
  let count = article.stats.reactions[REACTION] || 0;
  let reacted = given.data.kinds.includes(REACTION);
  renderReaction(label, count, reacted);

  fill("related", article.related || [], (item) => [articleLink(item.article)]);
  fill("ranking", article.ranking || [], (item) => [
    articleLink(item.article),
    el("small", {}, `#${item.rank} · ${item.views} views`),
  ]);
  fill("recommendations", article.recommendations || [], (item) => [
    articleLink(item.article),
    el("small", {}, item.reason.type.replace("_", " ")),
  ]);
  document.getElementById("article").setAttribute("aria-busy", "false");

  const button = document.getElementById("react");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const result = await api(`/articles/${article.id}/reactions/${REACTION}`, {
        method: reacted ? "DELETE" : "PUT",
        body: JSON.stringify({ reader }),
      });
      reacted = !reacted;
      count = result.data.count;
      renderReaction(label, count, reacted);
    } catch (error) {
      showError(error);
      button.disabled = false;
    }
  });

  // Counts this read, so the next recommendations know of it.
  api(`/articles/${article.id}/views`, { method: "POST", body: JSON.stringify({ reader }) }).catch(showError);
}

function showError(error) {
  const box = document.getElementById("error");
  box.textContent = error.message;
  box.hidden = false;
}

main().catch(showError);
