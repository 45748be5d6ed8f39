// Upload a new version: drag-and-drop or file picker, with a progress bar.
// Without JavaScript the form posts normally and the server redirects to the
// job's page; with it, XMLHttpRequest reports the transfer's progress and the
// job's page opens when the server has the file.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("upload-file");
  const zone = document.getElementById("dropzone");
  const chosen = document.getElementById("upload-chosen");
  const button = document.getElementById("upload-button");
  const box = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  const status = document.getElementById("upload-status");
  const errorBox = document.getElementById("upload-error");
  const maxBytes = Number(form.dataset.maxBytes || 0);

  function size(n) {
    const units = ["bytes", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
    box.hidden = true;
    button.disabled = false;
  }

  function showChosen() {
    const file = input.files && input.files[0];
    chosen.textContent = file ? file.name + " (" + size(file.size) + ")" : "";
    errorBox.hidden = true;
  }

  input.addEventListener("change", showChosen);
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) {
      input.files = files;
      showChosen();
    }
  });

  // The message of an error answer: JSON {"error": {"message"}} or an HTML page.
  function messageOf(xhr) {
    try {
      const body = JSON.parse(xhr.responseText);
      if (body && body.error && body.error.message) return body.error.message;
    } catch (e) { /* not JSON */ }
    try {
      const doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      const main = doc.querySelector("main");
      const text = main && main.querySelectorAll("p");
      if (text && text.length > 1) return text[1].textContent.trim();
    } catch (e) { /* not HTML */ }
    return "The upload failed (HTTP " + xhr.status + ").";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const file = input.files && input.files[0];
    if (!file) { showError("Choose a file first."); return; }
    if (maxBytes && file.size > maxBytes) {
      showError(file.name + " is " + size(file.size) + "; this server accepts up to " +
        form.dataset.maxText + ". Split the data, or ask the operator to raise the limit.");
      return;
    }
    errorBox.hidden = true;
    button.disabled = true;
    box.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading " + file.name + "…";

    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", form.elements.csrf_token.value);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      const percent = Math.round((100 * e.loaded) / e.total);
      bar.value = percent;
      status.textContent = "Uploading " + file.name + ": " + size(e.loaded) + " of " +
        size(e.total) + " (" + percent + "%)";
    });
    xhr.upload.addEventListener("load", function () {
      bar.removeAttribute("value"); // indeterminate while the server files it
      status.textContent = "Uploaded; queuing the file for loading…";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 202) {
        const body = JSON.parse(xhr.responseText);
        status.textContent = "Queued as job " + body.job + ".";
        window.location.assign(body.page_url);
      } else {
        showError(messageOf(xhr));
      }
    });
    xhr.addEventListener("error", function () {
      showError("The connection broke during the upload. Check the file's size " +
        "(at most " + form.dataset.maxText + ") and try again.");
    });
    xhr.send(new FormData(form));
  });
})();
