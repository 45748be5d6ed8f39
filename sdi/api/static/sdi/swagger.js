// The OpenAPI page: Swagger UI (bundled in /static/vendor/swagger-ui-dist)
// over the document named by #swagger-ui's data-url. No online validator
// (its badge is an image from another host), and the base layout without
// the top bar: its logo brings an inline <style>, which the page's
// Content-Security-Policy refuses.
(function () {
  "use strict";
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
