// homefire's browser page (no inline scripts: a strict CSP). Beside textual-serve's terminal it:
// - tells the chat whether the screen is touched (a cookie the websocket carries: the chat then shows
//   its tap bar and names taps, not keys);
// - makes a phone's keyboard work with the prompt: Enter sends (also from keyboards that send it as a
//   line break), no autocorrect or capitals, the terminal shrinks to stay above the keyboard;
// - turns a vertical swipe into the mouse wheel the chat understands (the transcript scrolls);
// - offers a restart button once the chat process ends.
(() => {
  const coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;
  document.cookie = `homefire_pointer=${coarse ? "coarse" : "fine"}; path=/; SameSite=Strict`;

  function terminal() {
    return document.querySelector(".textual-terminal");
  }

  // The terminal fills what is visible: above the soft keyboard when it is open.
  function fit() {
    const view = window.visualViewport;
    const element = terminal();
    if (!view || !element) return;
    const height = `${Math.floor(view.height)}px`;
    if (element.style.height !== height) {
      element.style.height = height;
      window.scrollTo(0, 0);
      if (typeof window.onresize === "function") window.onresize(); // textual.js refits the terminal
    }
  }

  function pressEnter(textarea) {
    const down = new KeyboardEvent("keydown", { key: "Enter", code: "Enter", bubbles: true, cancelable: true });
    Object.defineProperty(down, "keyCode", { get: () => 13 });
    Object.defineProperty(down, "which", { get: () => 13 });
    textarea.dispatchEvent(down);
  }

  function phoneKeyboard(textarea) {
    const attributes = {
      autocapitalize: "off",
      autocorrect: "off",
      autocomplete: "off",
      spellcheck: "false",
      enterkeyhint: "send",
      inputmode: "text",
    };
    for (const [name, value] of Object.entries(attributes)) textarea.setAttribute(name, value);
    // Some soft keyboards send Enter as text ("insertLineBreak", key code 229), which the terminal ignores.
    textarea.addEventListener("beforeinput", (event) => {
      if (event.inputType === "insertLineBreak" || event.inputType === "insertParagraph") {
        event.preventDefault();
        pressEnter(textarea);
      }
    });
  }

  function swipeScrolls(element) {
    let lastY = null;
    let lastX = 0;
    let carried = 0;
    const step = 16; // pixels of swipe per wheel notch
    element.addEventListener(
      "touchstart",
      (event) => {
        if (event.touches.length !== 1) return;
        lastY = event.touches[0].clientY;
        lastX = event.touches[0].clientX;
        carried = 0;
      },
      { passive: true },
    );
    element.addEventListener(
      "touchmove",
      (event) => {
        if (lastY === null || event.touches.length !== 1) return;
        const touch = event.touches[0];
        carried += lastY - touch.clientY;
        lastY = touch.clientY;
        lastX = touch.clientX;
        const target = element.querySelector(".xterm-screen") || element;
        while (Math.abs(carried) >= step) {
          const deltaY = carried > 0 ? step : -step;
          carried -= deltaY;
          target.dispatchEvent(
            new WheelEvent("wheel", {
              deltaY,
              deltaMode: 0,
              clientX: lastX,
              clientY: lastY,
              bubbles: true,
              cancelable: true,
            }),
          );
        }
        event.preventDefault(); // the page itself does not move
      },
      { passive: false },
    );
    element.addEventListener("touchend", () => {
      lastY = null;
    });
  }

  window.addEventListener("DOMContentLoaded", () => {
    document.getElementById("restart").addEventListener("click", () => window.location.reload());
  });

  // After textual.js's own onload has made the terminal.
  window.addEventListener("load", () => {
    const element = terminal();
    const textarea = document.querySelector(".xterm-helper-textarea");
    if (textarea) phoneKeyboard(textarea);
    if (element) swipeScrolls(element);
    if (window.visualViewport) {
      window.visualViewport.addEventListener("resize", fit);
      fit();
    }
  });
})();
