// The console's main flows in Firefox (Debian's firefox-esr over WebDriver BiDi, driven by
// puppeteer-core). Run by tests/console/test_firefox.py against a served ragstore whose
// collection "manuals" holds x200.txt; prints what the page showed as one JSON line and
// exits 1 with the reason when a step fails. Requests off loopback are aborted and
// counted, and the page's errors are collected: the test asserts both are empty.
import puppeteer from "puppeteer-core";

const [base] = process.argv.slice(2);
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
const seen = { blocked: [], errors: [] };
let step = "start";

// Polls from here with page.evaluate: puppeteer's waitForFunction compiles its predicate
// in the page, which the console's Content-Security-Policy (no eval) refuses, as it should.
async function until(page, predicate, argument, what) {
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (await page.evaluate(predicate, argument)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// The form control a <label> names, or a button by its text, as a user finds them: the
// element itself, or with `exists` only whether it is there (evaluate cannot return one).
function named([tag, wanted, exists]) {
  const found = [...document.querySelectorAll(tag)].find(
    (candidate) => candidate.textContent.trim() === wanted,
  );
  const element = tag === "label" ? found?.control : found;
  return exists ? Boolean(element) : element;
}

async function element(page, tag, text) {
  await until(page, named, [tag, text, true], `the ${tag} ${text}`);
  return (await page.evaluateHandle(named, [tag, text, false])).asElement();
}

const control = (page, text) => element(page, "label", text);
const button = (page, text) => element(page, "button", text);

async function textOf(page, selector, wanted) {
  await until(
    page,
    ([css, expected]) => Boolean(document.querySelector(css)?.textContent.includes(expected)),
    [selector, wanted],
    `${selector} to show ${wanted}`,
  );
  return page.$eval(selector, (element) => element.textContent.trim());
}

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.FIREFOX ?? "/usr/bin/firefox-esr",
  headless: true,
  // No updates, telemetry or remote settings: the machine has no internet.
  extraPrefsFirefox: {
    "app.update.enabled": false,
    "datareporting.policy.dataSubmissionEnabled": false,
    "toolkit.telemetry.enabled": false,
    "services.settings.server": "http://127.0.0.1:9/",
  },
});
try {
  const page = await browser.newPage();
  await page.setRequestInterception(true);
  page.on("request", (request) => {
    const host = new URL(request.url()).hostname;
    if (LOOPBACK.has(host) || request.url().startsWith("data:")) {
      request.continue();
    } else {
      seen.blocked.push(request.url());
      request.abort();
    }
  });
  page.on("pageerror", (error) => seen.errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") seen.errors.push(message.text());
  });

  // Collections: the list shows the seeded collection with its counts.
  step = "collections";
  await page.goto(`${base}/`);
  const collections = await textOf(page, "table", "manuals");

  // Search, hybrid mode: the result, its score parts and the question's words marked.
  step = "search";
  await page.goto(`${base}/#/search?collection=manuals`);
  await (await control(page, "Question")).type("reset power button");
  await (await control(page, "Mode")).select("hybrid");
  await (await button(page, "Search")).click();
  const status = await textOf(page, "#search-status", "1 result (hybrid).");
  const result = await page.$eval(".result", (element) => ({
    text: element.textContent,
    scores: [...element.querySelectorAll("dt")].map((term) => term.textContent),
    marked: element.querySelector("mark")?.textContent ?? null,
  }));

  // Chat: the streamed answer and its citation, which opens the chunk.
  step = "chat";
  await page.goto(`${base}/#/chat?collection=manuals`);
  await (await control(page, "Your message")).type("How do I reset the X200?");
  await (await button(page, "Send")).click();
  const chat = await textOf(page, "#chat-status", "Answer complete.");
  const answer = await page.$eval(".turn.assistant .answer", (element) => element.textContent);
  await page.click(".turn.assistant .citation");
  const chunk = await textOf(page, ".chunk.wanted", "hold the power button");

  console.log(JSON.stringify({ collections, status, result, chat, answer, chunk, ...seen }));
} catch (error) {
  const pages = await browser.pages();
  const shown = pages.length
    ? await pages.at(-1).evaluate(() => document.body?.innerText.slice(0, 500)).catch(() => "")
    : "";
  console.error(
    `firefox flow failed at ${step}: ${error.message}; the page showed: ${JSON.stringify(shown)}; ` +
      `blocked: ${JSON.stringify(seen.blocked)}; errors: ${JSON.stringify(seen.errors)}`,
  );
  process.exitCode = 1;
} finally {
  await browser.close();
}
