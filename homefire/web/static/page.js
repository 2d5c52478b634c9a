// homefire's browser page: a restart button once the chat process ends (no inline scripts: a strict CSP).
window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("restart").addEventListener("click", () => window.location.reload());
});
