"""Hong Kong reference data for the demo: districts, streets, trunk roads, names.

Centres are HK 1980 Grid (EPSG:2326) easting/northing of each area"s core,
converted once from WGS 84 with pyproj and rounded to the metre. Several names
(鰂魚涌, 深水埗) hold HKSCS characters that plain Big5 and cp950 lack, which is
what makes the Big5-HKSCS Shapefile worth testing.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BUS_ROUTES",
    "DISTRICTS",
    "LANDMARKS",
    "NAME_SUFFIXES",
    "NAME_SYLLABLES",
    "TRUNK_ROADS",
    "District",
    "Street",
    "TrunkRoad",
]


@dataclass(frozen=True)
class Street:
    """A local street: English and Traditional Chinese name."""

    name_en: str
    name_tc: str


@dataclass(frozen=True)
class District:
    """An urban area the demo places buildings, streets and stops in."""

    code: str
    name_en: str
    name_tc: str
    easting: float
    northing: float
    grid_angle: float  # degrees, orientation of the street grid
    storeys: tuple[int, int]  # typical range of NUM_STOREY
    weight: int  # share of the buildings
    streets: tuple[Street, Street, Street]


@dataclass(frozen=True)
class TrunkRoad:
    """A road between two districts" centres."""

    name_en: str
    name_tc: str
    start: str  # district code
    end: str
    speed_limit: int


# fmt: off
DISTRICTS: tuple[District, ...] = (
    District("CEN", "Central", "中環", 834405, 815903, 17, (15, 60), 9, (
        Street("Des Voeux Road Central", "德輔道中"),
        Street("Queen's Road Central", "皇后大道中"),
        Street("Connaught Road Central", "干諾道中"),
    )),
    District("WCH", "Wan Chai", "灣仔", 836044, 815493, 8, (10, 45), 8, (
        Street("Hennessy Road", "軒尼詩道"),
        Street("Lockhart Road", "駱克道"),
        Street("Johnston Road", "莊士敦道"),
    )),
    District("CWB", "Causeway Bay", "銅鑼灣", 836982, 815714, 12, (10, 40), 7, (
        Street("Yee Wo Street", "怡和街"),
        Street("Causeway Road", "高士威道"),
        Street("Hysan Avenue", "希慎道"),
    )),
    District("QBY", "Quarry Bay", "鰂魚涌", 840001, 816545, 25, (8, 50), 6, (
        Street("King's Road", "英皇道"),
        Street("Quarry Bay Street", "鰂魚涌街"),
        Street("Hoi Wan Street", "海灣街"),
    )),
    District("TST", "Tsim Sha Tsui", "尖沙咀", 835786, 817763, 2, (8, 40), 8, (
        Street("Nathan Road", "彌敦道"),
        Street("Canton Road", "廣東道"),
        Street("Salisbury Road", "梳士巴利道"),
    )),
    District("MKK", "Mong Kok", "旺角", 835498, 820033, 5, (6, 30), 10, (
        Street("Argyle Street", "亞皆老街"),
        Street("Shantung Street", "山東街"),
        Street("Portland Street", "砵蘭街"),
    )),
    District("SSP", "Sham Shui Po", "深水埗", 834756, 821251, 40, (4, 25), 9, (
        Street("Cheung Sha Wan Road", "長沙灣道"),
        Street("Lai Chi Kok Road", "荔枝角道"),
        Street("Un Chau Street", "元州街"),
    )),
    District("KTG", "Kwun Tong", "觀塘", 841278, 819225, 33, (8, 35), 8, (
        Street("Kwun Tong Road", "觀塘道"),
        Street("Hoi Yuen Road", "開源道"),
        Street("How Ming Street", "巧明街"),
    )),
    District("STN", "Sha Tin", "沙田", 837414, 827120, 48, (10, 40), 8, (
        Street("Sha Tin Centre Street", "沙田正街"),
        Street("Tai Chung Kiu Road", "大涌橋路"),
        Street("Sha Tin Wai Road", "沙田圍路"),
    )),
    District("TWN", "Tsuen Wan", "荃灣", 829782, 825804, 28, (8, 40), 7, (
        Street("Castle Peak Road - Tsuen Wan", "青山公路－荃灣段"),
        Street("Sha Tsui Road", "沙咀道"),
        Street("Tai Ho Road", "大河道"),
    )),
    District("TMN", "Tuen Mun", "屯門", 815222, 827965, 60, (6, 40), 7, (
        Street("Tuen Mun Heung Sze Wui Road", "屯門鄉事會路"),
        Street("Tuen Hi Road", "屯喜路"),
        Street("Tsing Hoi Circuit", "青海圍"),
    )),
    District("TPO", "Tai Po", "大埔", 834984, 834595, 36, (3, 30), 6, (
        Street("Kwong Fuk Road", "廣福道"),
        Street("On Fu Road", "安富道"),
        Street("Ting Kok Road", "汀角路"),
    )),
    District("YLG", "Yuen Long", "元朗", 820346, 833905, 14, (3, 25), 7, (
        Street("Castle Peak Road - Yuen Long", "青山公路－元朗段"),
        Street("Kau Yuk Road", "教育路"),
        Street("Yuen Long On Ning Road", "元朗安寧路"),
    )),
)
# fmt: on

TRUNK_ROADS: tuple[TrunkRoad, ...] = (
    TrunkRoad("Gloucester Road", "告士打道", "CEN", "CWB", 70),
    TrunkRoad("Island Eastern Corridor", "東區走廊", "CWB", "QBY", 70),
    TrunkRoad("Cross-Harbour Tunnel", "紅磡海底隧道", "WCH", "TST", 70),
    TrunkRoad("Kwun Tong Bypass", "觀塘繞道", "KTG", "MKK", 70),
    TrunkRoad("Lion Rock Tunnel Road", "獅子山隧道公路", "SSP", "STN", 70),
    TrunkRoad("Tolo Highway", "吐露港公路", "STN", "TPO", 100),
    TrunkRoad("Tsuen Wan Road", "荃灣路", "TWN", "SSP", 80),
    TrunkRoad("Tuen Mun Road", "屯門公路", "TWN", "TMN", 80),
    TrunkRoad("Yuen Long Highway", "元朗公路", "YLG", "TMN", 100),
    TrunkRoad("Tai Lam Tunnel", "大欖隧道", "TWN", "YLG", 100),
)

# fmt: off
#: Cantonese syllables building names are made of (romanisation, character).
NAME_SYLLABLES: tuple[tuple[str, str], ...] = (
    ("Wah", "華"), ("Fung", "豐"), ("Hing", "興"), ("Lee", "利"), ("Tak", "德"),
    ("Fook", "福"), ("Kam", "金"), ("On", "安"), ("Yat", "日"), ("Wing", "永"),
    ("Shing", "盛"), ("Cheung", "祥"), ("Po", "寶"), ("Lok", "樂"), ("Hoi", "海"),
    ("Sun", "新"), ("Kwong", "廣"), ("Mei", "美"), ("Tai", "泰"), ("Yue", "裕"),
    ("Ming", "明"), ("Chun", "俊"), ("Wai", "偉"), ("Kin", "建"), ("Lung", "龍"),
)
# fmt: on

# fmt: off
#: Building name endings (English, Chinese).
NAME_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("Building", "大廈"), ("Mansion", "大樓"), ("Court", "閣"), ("Centre", "中心"),
    ("House", "樓"), ("Garden", "花園"), ("Tower", "大廈"),
    ("Commercial Building", "商業大廈"), ("Industrial Building", "工業大廈"),
    ("Estate", "邨"),
)
# fmt: on

# fmt: off
#: Places bus stops are named after (English, Chinese).
LANDMARKS: tuple[tuple[str, str], ...] = (
    ("Police Station", "警署"), ("Market", "街市"), ("MTR Station", "港鐵站"),
    ("Post Office", "郵政局"), ("Sports Centre", "體育館"),
    ("Public Library", "公共圖書館"), ("Community Hall", "社區會堂"),
    ("Bus Terminus", "巴士總站"), ("Government Offices", "政府合署"),
    ("Park", "公園"), ("Hospital", "醫院"), ("Ferry Pier", "渡輪碼頭"),
)
# fmt: on

# fmt: off
#: Bus route numbers stops are served by.
BUS_ROUTES: tuple[str, ...] = (
    "1", "1A", "2", "5C", "6", "6F", "11", "15", "26", "40", "70", "88", "101",
    "102", "104", "112", "113", "170", "182", "203E", "259D", "268C", "270A",
    "307", "601", "680", "960", "968", "A21", "E23", "N170",
)
# fmt: on
