#!/usr/bin/env python3
"""The log screen in a real browser (headless Chromium, Debian's package, driven by Playwright):
loads the page from a running local stack, enters the key, filters the log, opens a record's
detail (its path and payload), opens a lead's card and sends a template from it, and saves
screenshots. Also times the page: its load (navigation to the load event), the first filtered
table and the detail drawer, as the median of several warm runs. Fails with a message when the
page does not behave. `make dev`'s smoke test runs it (infra/dev-smoke.sh).

  browser_check.py --url http://127.0.0.1:9000/lambda-url/crm-api/ui --key demo-operator-key
                   [--out .local/screen] [--runs 5] [--chromium /usr/bin/chromium]
"""
import argparse
import json
import pathlib
import statistics
import sys
import time

from playwright.sync_api import sync_playwright

TIMEOUT_MS = 30_000


def check(condition, message):
    if not condition:
        print(f"browser check failed: {message}", file=sys.stderr)
        sys.exit(1)


def until(page, expression, what):
    """Polls `expression` in the page (the page's CSP forbids eval, which Playwright's
    wait_for_function needs) until it is true."""
    deadline = time.perf_counter() + TIMEOUT_MS / 1000
    while time.perf_counter() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.02)
    check(False, f"timed out waiting for {what}")


def filtered_logs(page, integration, result):
    """Submits the filter bar; returns the rows' (integration, operation, result) and the time
    from the click to the filled table, in ms."""
    page.select_option("#filters select[name=integration]", integration)
    page.select_option("#filters select[name=result]", result)
    started = time.perf_counter()
    page.click("#filters button[type=submit]")
    until(page, "document.querySelector('#logs-rows').rows.length > 0 || "
                "document.querySelector('#logs-status').textContent.length > 0 && "
                "!document.querySelector('#logs-status').textContent.includes('…')", "the filtered log")
    took = (time.perf_counter() - started) * 1000
    rows = page.eval_on_selector_all("#logs-rows tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    return rows, took


def run(page, url, key, out, shoot):
    timings = {}
    started = time.perf_counter()
    page.goto(url, wait_until="load")
    timings["load_ms"] = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    timings["load_wall_ms"] = (time.perf_counter() - started) * 1000
    check("Entegrasyon" in page.title(), f"the page's title is {page.title()!r}")
    page.fill("#key", key)
    rows, timings["logs_ms"] = filtered_logs(page, "whatsapp", "success")
    status = page.text_content("#logs-status")
    check(rows, f"no WhatsApp successes listed ({status!r})")
    check(all(r[1] == "whatsapp" and r[3] == "success" for r in rows), f"the filter let other rows in: {rows[:3]}")
    # A record's detail: the record, the event's whole path, and its payload on demand.
    started = time.perf_counter()
    page.click("#logs-rows tr:first-child")
    page.wait_for_selector("#drawer .path li", timeout=TIMEOUT_MS)
    timings["detail_ms"] = (time.perf_counter() - started) * 1000
    steps = page.eval_on_selector_all("#drawer .path li", "items => items.map(i => i.textContent)")
    check(steps, "the drawer shows no path")
    check(page.is_visible("#drawer"), "the drawer did not open")
    if shoot:
        page.screenshot(path=str(out / "log-detail.png"), full_page=True)
    page.click("#close")
    # English labels on request.
    page.click("#lang")
    check(page.text_content("nav button[data-tab=logs]") == "Log", "the English labels did not come")
    page.click("#lang")
    # The leads, a lead's card with its timeline, and a template sent from it.
    page.click("nav button[data-tab=leads]")
    page.select_option("#lead-filters select[name=source]", "whatsapp")
    page.click("#lead-filters button[type=submit]")
    page.wait_for_selector("#leads-rows tr", timeout=TIMEOUT_MS)
    page.click("#leads-rows tr:first-child")
    page.wait_for_selector("#send-form", timeout=TIMEOUT_MS)
    check(page.eval_on_selector_all("#drawer .path li", "items => items.length") > 0, "the card shows no timeline")
    check(page.eval_on_selector_all("#drawer a[href^='https://wa.me/']", "links => links.length") > 0, "no wa.me link")
    if shoot:
        page.fill("#send-form input[name=parameters]", "Değerli müşterimiz")
        page.click("#send-form button[type=submit]")
        until(page, "document.querySelector('#send-state').textContent.includes('read') || "
                    "document.querySelector('#send-state').textContent.includes('failed')", "the send's state")
        sent = page.text_content("#send-state")
        check("read" in sent, f"the template from the card did not reach read: {sent!r}")
        page.screenshot(path=str(out / "card-send.png"), full_page=True)
    return timings, len(rows), steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--out", default=".local/screen")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        runs = []
        for i in range(args.runs + 1):
            # Each run is a fresh tab and session (the key is typed again); the first one warms
            # the functions and is not counted.
            context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="tr-TR")
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            timings, rows, steps = run(page, args.url, args.key, out, shoot=i == args.runs)
            check(not errors, f"the page's script failed: {errors}")
            if i:
                runs.append(timings)
            context.close()
        browser.close()
    summary = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    summary.update({"runs": len(runs), "rows": rows, "path_steps": len(steps), "screenshots": str(out)})
    print("log screen in Chromium:", json.dumps(summary))


if __name__ == "__main__":
    main()
