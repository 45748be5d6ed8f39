// The review map: a version's features drawn with MapLibre GL JS (bundled
// from npm, see scripts/build-assets), from the admin app's own preview
// GeoJSON. No basemap unless the server has one configured (SDI_BASEMAP_URL),
// so the page loads nothing from other hosts by default.
import * as maplibregl from "./vendor/maplibre-gl/maplibre-gl.mjs";

const el = document.getElementById("map");
const note = document.getElementById("map-note");
const COLOUR = "#c2410c";

function style() {
  const sources = {};
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }];
  if (el.dataset.basemap) {
    sources.basemap = {
      type: "raster",
      tiles: [el.dataset.basemap],
      tileSize: 256,
      attribution: el.dataset.basemapAttribution || "",
    };
    layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  return { version: 8, sources, layers };
}

function drawLayers(geometry) {
  const kind = (geometry || "").replace("Multi", "");
  if (kind === "Polygon") {
    return [
      { id: "preview-fill", type: "fill", source: "preview", paint: { "fill-color": COLOUR, "fill-opacity": 0.35 } },
      { id: "preview-line", type: "line", source: "preview", paint: { "line-color": COLOUR, "line-width": 1.2 } },
    ];
  }
  if (kind === "LineString") {
    return [{ id: "preview-line", type: "line", source: "preview", paint: { "line-color": COLOUR, "line-width": 2 } }];
  }
  return [{
    id: "preview-circle", type: "circle", source: "preview",
    paint: { "circle-color": COLOUR, "circle-radius": 5, "circle-stroke-color": "#fff", "circle-stroke-width": 1.5 },
  }];
}

function fit(map, bbox) {
  if (!bbox) return;
  const [w, s, e, n] = bbox;
  if (w === e && s === n) map.jumpTo({ center: [w, s], zoom: 14 });
  else map.fitBounds([[w, s], [e, n]], { padding: 30, animate: false, maxZoom: 17 });
}

async function main() {
  const extent = JSON.parse(el.dataset.extent || "null");
  const map = new maplibregl.Map({
    container: el,
    style: style(),
    center: extent ? [(extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2] : [114.17, 22.32],
    zoom: 9,
    attributionControl: el.dataset.basemap ? { compact: true } : false,
    // Keeps the drawn frame readable (screenshots, tests); previews are small.
    canvasContextAttributes: { preserveDrawingBuffer: true },
  });
  window.sdiPreviewMap = map;
  const loaded = new Promise((resolve) => map.once("load", resolve));
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }));
  const response = await fetch(el.dataset.src, { credentials: "same-origin" });
  if (!response.ok) throw new Error("HTTP " + response.status);
  const data = await response.json();
  await loaded;
  map.addSource("preview", { type: "geojson", data });
  for (const layer of drawLayers(el.dataset.geometry)) map.addLayer(layer);
  fit(map, data.bbox || extent);
  map.once("idle", () => {
    el.dataset.features = String(data.numberReturned);
    el.dataset.ready = "true";
  });
  const shown = data.numberReturned.toLocaleString();
  const all = data.numberMatched.toLocaleString();
  note.textContent = data.numberReturned < data.numberMatched
    ? `Showing a sample of ${shown} of ${all} features` +
      (data.simplified ? ", simplified for display." : ".")
    : `Showing all ${all} features` + (data.simplified ? " (simplified for display)." : ".");
}

main().catch((err) => {
  el.dataset.ready = "error";
  note.textContent = "The map preview could not be drawn: " + err.message;
});
