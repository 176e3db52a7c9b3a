"""What the programme deals in, per occupation: how often villages take it up, the materials
handed out (item, unit, price, quantity), the income it brings once practised, and the OTOP
product type and products of an occupational group.
"""

from __future__ import annotations

# Popular choices in Isan villages come first and are drawn more often.
OCCUPATION_WEIGHTS = (14, 12, 10, 10, 6, 9, 7, 6, 7, 10, 9)

# item, unit, unit price THB (low, high), quantity (low, high), quantity may be fractional
ItemSpec = tuple[str, str, tuple[int, int], tuple[int, int], bool]
ITEMS: dict[str, tuple[ItemSpec, ...]] = {
    "mushroom": (
        ("ก้อนเชื้อเห็ดนางฟ้า", "ก้อน", (8, 12), (100, 400), False),
        ("ตาข่ายพรางแสง", "ม้วน", (380, 520), (1, 2), False),
        ("บัวรดน้ำ", "อัน", (90, 150), (1, 2), False),
        ("ชั้นวางก้อนเห็ด", "ชุด", (600, 900), (1, 2), False),
    ),
    "weaving": (
        ("เส้นไหม", "กก.", (1000, 1400), (1, 3), True),
        ("เส้นฝ้าย", "กก.", (220, 300), (2, 5), True),
        ("สีย้อมธรรมชาติ", "ชุด", (250, 350), (1, 3), False),
        ("ฟืมทอผ้า", "อัน", (800, 1500), (1, 1), False),
    ),
    "reed_mat": (
        ("กก", "กก.", (30, 50), (20, 60), False),
        ("สีย้อมกก", "ซอง", (20, 30), (5, 20), False),
        ("เชือกไนลอน", "ม้วน", (50, 80), (2, 6), False),
        ("กี่ทอเสื่อ", "ชุด", (900, 1500), (1, 1), False),
    ),
    "cricket": (
        ("ไข่จิ้งหรีด", "ขัน", (60, 100), (2, 10), False),
        ("อาหารจิ้งหรีด", "กระสอบ", (420, 520), (1, 4), False),
        ("ถาดไข่กระดาษ", "แผง", (2, 4), (100, 300), False),
        ("มุ้งเขียว", "ม้วน", (300, 450), (1, 2), False),
    ),
    "frog": (
        ("ลูกกบ", "ตัว", (1, 3), (300, 1000), False),
        ("อาหารกบ", "กระสอบ", (480, 600), (1, 4), False),
        ("บ่อพลาสติก", "ผืน", (300, 450), (1, 3), False),
    ),
    "processed_food": (
        ("ปลาร้า", "กก.", (70, 100), (5, 20), False),
        ("พริกแห้ง", "กก.", (120, 180), (1, 5), True),
        ("ถุงบรรจุภัณฑ์", "แพ็ค", (35, 60), (2, 10), False),
        ("เครื่องซีลถุง", "เครื่อง", (750, 1200), (1, 1), False),
    ),
    "basketry": (
        ("ไม้ไผ่", "ลำ", (25, 40), (5, 20), False),
        ("เส้นพลาสติก", "กก.", (80, 110), (2, 8), True),
        ("มีดตอก", "เล่ม", (120, 200), (1, 2), False),
        ("แลคเกอร์", "กระป๋อง", (100, 150), (1, 3), False),
    ),
    "herbal": (
        ("ไพลแห้ง", "กก.", (60, 120), (2, 10), True),
        ("ขมิ้นชัน", "กก.", (50, 100), (2, 8), True),
        ("ผ้าดิบ", "เมตร", (30, 50), (10, 30), False),
        ("หม้อนึ่ง", "ใบ", (350, 550), (1, 1), False),
    ),
    "fertiliser": (
        ("มูลวัว", "กระสอบ", (35, 50), (10, 40), False),
        ("กากน้ำตาล", "แกลลอน", (80, 120), (1, 4), False),
        ("สารเร่ง พด.1", "ซอง", (15, 25), (2, 10), False),
        ("ถังหมัก 200 ลิตร", "ใบ", (400, 550), (1, 2), False),
    ),
    "vegetables": (
        ("เมล็ดพันธุ์ผัก", "ซอง", (20, 35), (5, 20), False),
        ("ปุ๋ยอินทรีย์", "กระสอบ", (200, 300), (1, 5), False),
        ("ระบบน้ำหยด", "ชุด", (700, 1200), (1, 1), False),
        ("ตาข่ายกันแมลง", "ม้วน", (550, 800), (1, 2), False),
    ),
    "cleaning_liquid": (
        ("หัวเชื้อ N70", "กก.", (100, 140), (1, 5), True),
        ("เกลือ", "กก.", (8, 12), (2, 10), False),
        ("แกลลอนเปล่า", "ใบ", (12, 20), (10, 30), False),
        ("หัวน้ำหอม", "ขวด", (60, 100), (1, 4), False),
    ),
}

# follow-up occupation income, THB per month, when practising
OCCUPATION_INCOME: dict[str, tuple[int, int]] = {
    "mushroom": (1500, 6000),
    "weaving": (1000, 5000),
    "reed_mat": (800, 3500),
    "cricket": (1500, 8000),
    "frog": (1000, 5000),
    "processed_food": (1000, 5000),
    "basketry": (800, 3000),
    "herbal": (800, 3000),
    "fertiliser": (500, 2500),
    "vegetables": (1000, 4500),
    "cleaning_liquid": (500, 2000),
}

OTOP_TYPE: dict[str, str] = {
    "mushroom": "food",
    "weaving": "textile",
    "reed_mat": "decor",
    "cricket": "food",
    "frog": "food",
    "processed_food": "food",
    "basketry": "decor",
    "herbal": "herbal",
    "fertiliser": "decor",
    "vegetables": "food",
    "cleaning_liquid": "decor",
}
PRODUCTS: dict[str, tuple[str, ...]] = {
    "mushroom": ("น้ำพริกเห็ดนางฟ้า", "เห็ดนางฟ้าสด", "แหนมเห็ด"),
    "weaving": ("ผ้าไหมมัดหมี่", "ผ้าฝ้ายย้อมคราม", "ผ้าขาวม้า"),
    "reed_mat": ("เสื่อกกลายขิด", "กระเป๋าเสื่อกก", "เบาะรองนั่งกก"),
    "cricket": ("จิ้งหรีดทอดกรอบ", "จิ้งหรีดสด"),
    "frog": ("กบแดดเดียว", "กบสด"),
    "processed_food": ("ปลาร้าบอง", "ข้าวเกรียบว่าว", "หมี่กรอบ"),
    "basketry": ("กระติบข้าวไม้ไผ่", "ตะกร้าเส้นพลาสติก", "กระด้ง"),
    "herbal": ("ลูกประคบสมุนไพร", "ยาหม่องสมุนไพร", "สบู่สมุนไพร"),
    "fertiliser": ("ปุ๋ยหมักชีวภาพอัดเม็ด", "น้ำหมักชีวภาพ"),
    "vegetables": ("ผักสลัดปลอดสาร", "ผักบุ้งปลอดสาร"),
    "cleaning_liquid": ("น้ำยาล้างจานสูตรมะกรูด", "น้ำยาอเนกประสงค์"),
}

# A group's market: the unit it sells by and a plausible price per unit (THB), by OTOP type;
# who buys, by sales channel ({village}: the village's name).
SALE_UNITS: dict[str, tuple[str, tuple[int, int]]] = {
    "food": ("ถุง", (20, 120)),
    "beverage": ("ขวด", (15, 60)),
    "textile": ("ผืน", (150, 2500)),
    "decor": ("ชิ้น", (30, 450)),
    "herbal": ("ชิ้น", (35, 150)),
}
BUYERS: dict[str, str] = {
    "local_market": "ตลาดนัดประจำสัปดาห์{village}",
    "middleman": "พ่อค้าคนกลางรับซื้อถึงหมู่บ้าน",
    "shop": "ร้านของฝากในตัวอำเภอ",
    "otop_fair": "งาน OTOP จังหวัดอุบลราชธานี",
    "online": "เพจเฟซบุ๊กของกลุ่ม",
    "coop": "สหกรณ์การเกษตรอำเภอ",
}

# Step 10 of the programme: the problem a follow-up visit finds and a typical agreed action.
ACTIONS: dict[str, str] = {
    "market": "พัฒนากรประสานร้านค้าและตลาดนัดในอำเภอให้ภายใน 30 วัน",
    "materials": "รวมกลุ่มสั่งวัตถุดิบร่วมกัน ปราชญ์แนะนำแหล่งซื้อ",
    "skills": "ปราชญ์สาธิตซ้ำที่บ้านในเดือนหน้า",
    "capital": "แนะนำกู้กองทุนหมู่บ้านและกองทุน กข.คจ.",
    "time": "ปรับเป็นทำช่วงหลังเก็บเกี่ยว และชวนสมาชิกในบ้านช่วย",
    "weather": "ทำโรงเรือนกันฝน ติดตามอีกครั้งหลังหน้าฝน",
    "health": "ให้สมาชิกในครัวเรือนทำแทน ติดตามอีกครั้งใน 3 เดือน",
    "other": "ติดตามอีกครั้งใน 1 เดือน",
}
