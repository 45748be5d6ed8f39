// Follow a job on its page: poll its JSON status until it has finished.
(function () {
  "use strict";
  const root = document.getElementById("job");
  if (!root) return;
  const url = root.dataset.statusUrl;
  const state = document.getElementById("job-state");
  const bar = document.getElementById("job-bar");
  const message = document.getElementById("job-message");
  const errorBox = document.getElementById("job-error");
  const done = document.getElementById("job-done");
  const retry = document.getElementById("job-retry");
  const review = document.getElementById("review-link");
  const versionText = document.getElementById("job-version");

  const opened = Date.now();

  function describe(job) {
    if (job.status === "queued") {
      const waiting = job.message || "Waiting for a worker…";
      // No worker after a while: say where to look (sdi up starts one).
      return Date.now() - opened > 20000
        ? waiting + " No worker has taken it yet: is `sdi worker` running?"
        : waiting;
    }
    if (job.status === "running") {
      if (job.total && job.progress >= job.total) {
        return "Comparing with the previous version and indexing…";
      }
      if (job.total) {
        return "Loading features: " + job.progress.toLocaleString() + " of " +
          job.total.toLocaleString();
      }
      return job.progress ? "Loaded " + job.progress.toLocaleString() + " features…"
        : "Reading the file…";
    }
    return job.message;
  }

  function render(job) {
    root.dataset.status = job.status;
    state.textContent = job.status;
    state.className = "state " + job.status;
    if (job.percent === null || job.percent === undefined) bar.removeAttribute("value");
    else bar.value = job.percent;
    message.textContent = describe(job);
    if (job.status === "failed") {
      errorBox.textContent = job.error;
      errorBox.hidden = false;
      retry.hidden = false;
      document.getElementById("job-progress").hidden = true;
    }
    if (job.status === "succeeded") {
      versionText.textContent = job.version;
      if (job.version_url) review.href = job.version_url;
      done.hidden = false;
    }
  }

  let delay = 500;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (job) {
        render(job);
        if (job.status !== "succeeded" && job.status !== "failed") {
          delay = Math.min(delay * 1.2, 3000);
          window.setTimeout(poll, delay);
        }
      })
      .catch(function (err) {
        message.textContent = "Cannot reach the server (" + err.message + "); retrying…";
        window.setTimeout(poll, 3000);
      });
  }
  if (root.dataset.status !== "succeeded" && root.dataset.status !== "failed") poll();
})();
