// Scripts of sdi's OGC API pages (sdi/api/templates), served from this
// server: the page-size selector of an items page and the Leaflet maps
// (from /static/vendor) of a collection, a page of items and one item.
// What a map shows comes from the page's JSON block
// <script type="application/json" id="sdi-map">, so the pages carry no
// inline script and run under a Content-Security-Policy without
// 'unsafe-inline'.
(function () {
  "use strict";

  function pageSizeSelector() {
    var select = document.getElementById("limits");
    if (!select) {
      return;
    }
    var params = new URLSearchParams(document.location.search);
    var limit = params.get("limit");
    if (limit) {
      var known = Array.from(select.options).some(function (o) { return o.value === limit; });
      if (!known) {
        select.add(new Option(limit, limit));
      }
      select.value = limit;
    }
    select.addEventListener("change", function (ev) {
      params.set("limit", ev.target.value);
      params.delete("offset");
      document.location.search = params.toString();
    });
  }

  // A Leaflet map in ``elementId``; a basemap only when the server has one
  // (SDI_BASEMAP_URL): otherwise a plain background with a metric scale.
  function newMap(elementId, basemap) {
    // maxZoom on the map itself: with no tile layer, nothing else sets one.
    var map = L.map(elementId, { maxZoom: 19 });
    if (basemap && basemap.url) {
      L.tileLayer(basemap.url, { maxZoom: 19, attribution: basemap.attribution || "" }).addTo(map);
    }
    L.control.scale({ imperial: false }).addTo(map);
    return map;
  }

  function fit(map, bounds, maxZoom) {
    if (bounds.isValid()) {
      map.fitBounds(bounds, { maxZoom: maxZoom, padding: [12, 12] });
    } else {
      map.fitWorld();
    }
  }

  function extentMap(map, bbox) {
    if (!bbox) {
      map.fitWorld();
      return;
    }
    var east = bbox[2] < bbox[0] ? bbox[2] + 360 : bbox[2]; // crosses the antimeridian
    var extent = L.rectangle([[bbox[1], bbox[0]], [bbox[3], east]], { weight: 2 });
    extent.addTo(map);
    map.fitBounds(extent.getBounds(), { maxZoom: 14, padding: [12, 12] });
  }

  function itemsMap(map, features, itemsPath) {
    var items = L.geoJSON(features, {
      onEachFeature: function (feature, layer) {
        var link = document.createElement("a");
        link.href = itemsPath + "/" + encodeURIComponent(feature.id) + "?f=html";
        link.textContent = feature.properties.label;
        layer.bindPopup(link);
      }
    });
    var markers = L.markerClusterGroup({ disableClusteringAtZoom: 16, chunkedLoading: true });
    markers.addLayer(items);
    map.addLayer(markers);
    fit(map, items.getBounds(), 17);
  }

  function itemMap(map, feature) {
    var item = L.geoJSON(feature);
    item.addTo(map);
    fit(map, item.getBounds(), 17);
  }

  function drawMap() {
    var block = document.getElementById("sdi-map");
    if (!block) {
      return;
    }
    var spec = JSON.parse(block.textContent);
    var map = newMap(spec.element, spec.basemap);
    if (spec.kind === "extent") {
      extentMap(map, spec.bbox);
    } else if (spec.kind === "items") {
      itemsMap(map, spec.features, spec.itemsPath);
    } else if (spec.kind === "item") {
      itemMap(map, spec.feature);
    }
  }

  pageSizeSelector();
  drawMap();
})();
