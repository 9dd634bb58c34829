// Drives the reader page and the API docs in headless Chromium: the page
// loads, its four boxes (the article with its breadcrumb, Related, Ranking,
// Recommendation) are filled, and a click on the reaction raises its count
// by one; /docs lists the API's operations.
// Usage: node reader.mjs http://127.0.0.1:PORT
import { chromium } from "playwright-core";

const base = process.argv[2];
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const fail = (message) => {
  console.error(`browser test failed: ${message}`);
  process.exitCode = 1;
};

try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));

  // The Related index of a fresh demo store takes a few seconds after the
  // start: reload until every box has items (bounded).
  const counts = async () =>
    page.evaluate(() =>
      ["related", "ranking", "recommendations"].map(
        (id) => Number(document.getElementById(id).dataset.count ?? 0),
      ),
    );
  let filled = false;
  for (let attempt = 0; attempt < 30 && !filled; attempt++) {
    await page.goto(`${base}/reader/`);
    await page.waitForSelector('#article[aria-busy="false"]', { timeout: 10_000 });
    filled = (await counts()).every((n) => n > 0);
    if (!filled) await page.waitForTimeout(1_000);
  }
  const title = (await page.textContent("#title")).trim();
  const crumbs = await page.locator("#breadcrumb li").count();
  const body = (await page.textContent("#body")).trim();
  console.log(`article "${title}": ${crumbs} breadcrumb items, ${body.length} characters of body; boxes ${await counts()}`);
  if (!title || crumbs === 0 || body.length === 0) fail("the article is not rendered");
  if (!filled) fail(`a feed box stayed empty: ${await counts()}`);

  const before = Number(await page.textContent("#react-count"));
  const label = (await page.textContent("#react-label")).trim();
  await page.click("#react");
  await page.waitForFunction(
    (expected) => document.getElementById("react-count").textContent === String(expected),
    before + 1,
    { timeout: 10_000 },
  );
  console.log(`${label} ${before} -> ${await page.textContent("#react-count")} after a click`);
  if (label !== "veryGood!") fail(`the reaction is labelled ${label}`);
  if (errors.length) fail(`the page logged errors: ${errors.join("; ")}`);

  const docs = await browser.newPage();
  const blocked = [];
  docs.on("console", (message) => /Content.Security.Policy/i.test(message.text()) && blocked.push(message.text()));
  await docs.goto(`${base}/docs/`);
  await docs.waitForSelector(".opblock", { timeout: 20_000 });
  const operations = await docs.locator(".opblock").count();
  console.log(`/docs lists ${operations} operations`);
  if (operations < 20) fail(`/docs lists only ${operations} operations`);
  if (blocked.length) fail(`/docs broke its Content-Security-Policy: ${blocked.join("; ")}`);
} catch (error) {
  fail(error.message);
} finally {
  await browser.close();
}
