"""The simulated world: calendars, banks and account numbers, vendor names, and the vendor master."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from paysentry.simulation.config import SimulatedCompany

CENT = Decimal("0.01")


def money(value: float | Decimal) -> Decimal:
    """Two-decimal money from a sampled float (formatting, not binary rounding, decides the cents)."""
    return Decimal(f"{value:.2f}") if isinstance(value, float) else value.quantize(CENT)


# --- calendar ---------------------------------------------------------------------------------------


def is_business_day(day: date) -> bool:
    return day.weekday() < 5


def add_business_days(day: date, n: int) -> date:
    """The n-th business day after `day` (before it when n < 0); n == 0 rolls forward to a business day."""
    step = 1 if n >= 0 else -1
    remaining = abs(n)
    while not is_business_day(day):
        day += timedelta(days=step)
    while remaining:
        day += timedelta(days=step)
        if is_business_day(day):
            remaining -= 1
    return day


def zone(company: SimulatedCompany) -> ZoneInfo:
    return ZoneInfo(company.timezone)


def local_instant(company: SimulatedCompany, day: date, seconds: int) -> datetime:
    """The UTC instant of `seconds` after local midnight of `day` (wall clock, so DST days work)."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone(company))
    return (midnight + timedelta(seconds=seconds)).astimezone(UTC)


def local_day(company: SimulatedCompany, instant: datetime) -> date:
    return instant.astimezone(zone(company)).date()


def local_seconds(company: SimulatedCompany, instant: datetime) -> int:
    local = instant.astimezone(zone(company))
    return local.hour * 3600 + local.minute * 60 + local.second


def rfc3339(company: SimulatedCompany, instant: datetime) -> str:
    return instant.astimezone(zone(company)).isoformat(timespec="seconds")


# --- banks and accounts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    number: str
    bank: str
    country: str


@dataclass(frozen=True)
class Bank:
    name: str
    code: str  # IBAN bank code, or the leading digits of a domestic account number
    length: int  # random digits after the code


_B = Bank
BANKS: dict[str, tuple[Bank, ...]] = {
    "CN": (
        _B("ICBC", "1001", 15),
        _B("China Construction Bank", "3105", 16),
        _B("Bank of China", "4563", 14),
        _B("China Merchants Bank", "7559", 12),
        _B("Bank of Communications", "3100", 17),
        _B("Agricultural Bank of China", "0304", 15),
    ),
    "HK": (_B("HSBC Hong Kong", "004", 9), _B("Bank of China (Hong Kong)", "012", 9), _B("Hang Seng Bank", "024", 9)),
    "US": (
        _B("JPMorgan Chase", "", 10),
        _B("Bank of America", "", 12),
        _B("Wells Fargo", "", 10),
        _B("Citibank", "", 9),
        _B("U.S. Bank", "", 12),
        _B("PNC Bank", "", 10),
    ),
    "CA": (_B("Royal Bank of Canada", "003", 12), _B("TD Canada Trust", "004", 12), _B("BMO", "001", 12)),
    "MX": (_B("BBVA México", "012", 15), _B("Banorte", "072", 15), _B("Citibanamex", "002", 15)),
    "SG": (_B("DBS Bank", "", 10), _B("OCBC", "", 12)),
    "DE": (
        _B("Deutsche Bank", "10070000", 10),
        _B("Commerzbank", "50040000", 10),
        _B("Sparkasse KölnBonn", "37050198", 10),
        _B("DZ Bank", "50060400", 10),
        _B("HypoVereinsbank", "70020270", 10),
        _B("Postbank", "10010010", 10),
    ),
    "AT": (_B("Erste Bank", "20111", 11), _B("Raiffeisenlandesbank NÖ-Wien", "32000", 11), _B("BAWAG", "14000", 11)),
    "NL": (_B("ABN AMRO", "ABNA", 10), _B("ING Bank", "INGB", 10), _B("Rabobank", "RABO", 10)),
    "FR": (_B("BNP Paribas", "30004", 18), _B("Société Générale", "30003", 18), _B("Crédit Agricole", "30006", 18)),
    "TR": (_B("Türkiye İş Bankası", "000640", 16), _B("Garanti BBVA", "000620", 16)),
    "GB": (
        _B("Barclays", "BUKB", 14),
        _B("HSBC UK", "HBUK", 14),
        _B("Lloyds Bank", "LOYD", 14),
        _B("Revolut", "REVO", 14),
    ),
    "LT": (_B("Revolut Bank UAB", "32500", 11), _B("Swedbank", "73000", 11)),
    "PL": (_B("PKO Bank Polski", "10201026", 16), _B("mBank", "11402004", 16)),
    "CY": (_B("Bank of Cyprus", "00200128", 16), _B("Hellenic Bank", "00500195", 16)),
    "AE": (_B("Emirates NBD", "260", 16), _B("Mashreq", "033", 16)),
    "MT": (_B("Bank of Valletta", "VALL22013", 18),),
}
# Personal (employee-like) accounts: debit-card numbers in China, retail banks elsewhere.
PERSONAL_BANKS: dict[str, tuple[Bank, ...]] = {
    "CN": (
        _B("ICBC", "622202", 13),
        _B("China Construction Bank", "621700", 13),
        _B("Agricultural Bank of China", "622848", 13),
    ),
    "US": (_B("JPMorgan Chase", "", 10), _B("Bank of America", "", 12)),
    "DE": (_B("ING-DiBa", "50010517", 10), _B("Sparkasse KölnBonn", "37050198", 10)),
}
IBAN_COUNTRIES = frozenset({"DE", "AT", "NL", "FR", "TR", "GB", "LT", "PL", "CY", "AE", "MT"})
# Where a compromised vendor's "new bank" sits: outside every default company's vendor base.
FOREIGN_POOL: tuple[str, ...] = ("GB", "LT", "PL", "CY", "AE", "SG", "HK", "MT")


def iban(country: str, bban: str) -> str:
    """An IBAN with correct ISO 13616 check digits (mod 97)."""
    digits = "".join(str(int(char, 36)) for char in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


class AccountBook:
    """Hands out account numbers that are unique across the whole simulated world."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.issued: set[str] = set()

    def new(self, country: str, *, personal: bool = False, avoid_bank: str | None = None) -> Account:
        banks = (PERSONAL_BANKS.get(country) if personal else None) or BANKS[country]
        choices = [bank for bank in banks if bank.name != avoid_bank] or list(banks)
        bank = self.rng.choice(choices)
        while True:
            first = str(self.rng.randint(1, 9)) if not bank.code else str(self.rng.randint(0, 9))
            rest = first + "".join(str(self.rng.randint(0, 9)) for _ in range(bank.length - 1))
            body = bank.code + rest
            number = iban(country, body) if country in IBAN_COUNTRIES else body
            if number not in self.issued:
                self.issued.add(number)
                return Account(number, bank.name, country)


# --- vendor names -----------------------------------------------------------------------------------

_CN_CITIES = ("上海", "北京", "深圳", "广州", "苏州", "杭州", "天津", "宁波", "成都", "武汉", "青岛", "东莞")
_CN_TRADES = ("宝钢", "华创", "恒远", "鑫达", "中联", "瑞丰", "金桥", "德信", "天成", "汇通", "新宇", "海纳", "博源")
_CN_LINES = ("贸易", "物流", "电子科技", "机械设备", "包装材料", "化工", "信息技术", "建材", "精密制造", "供应链管理")
_US_WORDS = (
    "Lakeside", "Summit", "Redwood", "Keystone", "Liberty", "Pioneer", "Granite", "Blue Ridge",
    "Evergreen", "Harbor", "Prairie", "Copperline", "Northstar", "Ironwood", "Bayview", "Clearwater",
)  # fmt: skip
_US_LINES = (
    "Industrial Supply", "Logistics", "Packaging", "Facility Services", "Software", "Electric",
    "Staffing", "Fabrication", "Office Solutions", "Freight", "Consulting", "Chemicals",
)  # fmt: skip
_DE_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann",
    "Schulz", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Braun",
)  # fmt: skip
_DE_LINES = (
    "Logistik", "Metallbau", "Verpackungen", "Elektrotechnik", "Maschinenbau", "Druckerei",
    "Gebäudereinigung", "IT-Service", "Spedition", "Werkzeugbau", "Kunststofftechnik",
)  # fmt: skip
_NAME_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "HK": (("Harbour", "Pacific", "Victoria", "Kowloon", "Jade", "Pearl River", "Orient"),
           ("Trading", "Logistics", "Electronics", "Sourcing"), ("Limited", "Co., Limited")),
    "US": (_US_WORDS, _US_LINES, ("Inc.", "LLC", "Corp.", "Co.")),
    "CA": (("Maple", "Laurentian", "Prairie", "Cascade"), ("Forest Products", "Logistics", "Metals"), ("Ltd.",)),
    "MX": (("Azteca", "del Norte", "Bajío", "Pacífico"), ("Logística", "Empaques", "Metalúrgica"),
           ("S.A. de C.V.",)),
    "DE": (_DE_NAMES, _DE_LINES, ("GmbH", "GmbH & Co. KG", "AG", "KG")),
    "AT": (_DE_NAMES, _DE_LINES, ("GmbH",)),
    "NL": (("de Vries", "Jansen", "Bakker", "Visser", "Smit"), ("Logistiek", "Techniek", "Verpakking"), ("B.V.",)),
    "FR": (("Dubois", "Martin", "Bernard", "Lefèvre", "Moreau"), ("Logistique", "Emballages", "Industries"),
           ("SAS", "SARL")),
    "TR": (("Anadolu", "Ege", "Marmara", "Kapadokya"), ("Tekstil", "Makina", "Lojistik"), ("A.Ş.",)),
}  # fmt: skip


def vendor_name(rng: random.Random, country: str) -> str:
    if country == "CN":
        suffix = "股份有限公司" if rng.random() < 0.2 else "有限公司"
        return rng.choice(_CN_CITIES) + rng.choice(_CN_TRADES) + rng.choice(_CN_LINES) + suffix
    words, lines, suffixes = _NAME_PARTS[country]
    return f"{rng.choice(words)} {rng.choice(lines)} {rng.choice(suffixes)}"


_LEGAL_FORM_CHANGES: tuple[tuple[str, str], ...] = (
    ("股份有限公司", "集团股份有限公司"), ("有限公司", "股份有限公司"), ("GmbH & Co. KG", "GmbH"),
    ("GmbH", "GmbH & Co. KG"), ("KG", "GmbH & Co. KG"), ("AG", "SE"), ("LLC", "Inc."), ("Inc.", "Holdings Inc."),
    ("Corp.", "Inc."), ("Co.", "LLC"), ("Co., Limited", "Holdings Limited"), ("Limited", "Holdings Limited"),
    ("Ltd.", "Inc."), ("B.V.", "Holding B.V."), ("SARL", "SAS"), ("SAS", "SA"), ("A.Ş.", "Holding A.Ş."),
    ("S.A. de C.V.", "S.A.P.I. de C.V."),
)  # fmt: skip


def renamed(name: str) -> str:
    """A legal-form change, the commonest legitimate name change in a vendor master."""
    for old, new in _LEGAL_FORM_CHANGES:
        if name.endswith(old):
            return name[: -len(old)] + new
    return name + " Holding"


# --- the vendor master ------------------------------------------------------------------------------


@dataclass
class Vendor:
    vendor_id: str
    company: SimulatedCompany
    country: str
    typical: float  # median payment amount, in the company's currency
    sigma: float  # spread of ln(amount) around it
    rate: float  # expected payments per business day
    channels: tuple[tuple[str, float], ...]
    created_on: date
    accounts: list[tuple[datetime, Account]]
    names: list[tuple[datetime, str]]
    invoice_next: int
    round_to: int = 0
    fixed_amount: Decimal | None = None
    fixed_weekday: int = 0
    payable_from: date | None = None  # None: in the master since before the period
    blocked: list[tuple[datetime, datetime]] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)

    @property
    def domestic(self) -> bool:
        return self.country in self.company.domestic_countries

    def account_at(self, instant: datetime) -> Account:
        current = self.accounts[0][1]
        for since, account in self.accounts:
            if since <= instant:
                current = account
        return current

    def name_at(self, instant: datetime) -> str:
        current = self.names[0][1]
        for since, name in self.names:
            if since <= instant:
                current = name
        return current

    def is_blocked(self, instant: datetime) -> bool:
        return any(start <= instant <= end for start, end in self.blocked)

    def next_invoice(self, rng: random.Random) -> str:
        self.invoice_next += rng.randint(1, 4)
        return f"INV-{self.invoice_next:07d}"

    def pick_channel(self, rng: random.Random) -> str:
        roll = rng.random()
        for channel, cumulative in self.channels:
            if roll < cumulative:
                return channel
        return self.channels[-1][0]

    def draw_amount(self, rng: random.Random, limit: Decimal) -> Decimal:
        """One invoice amount: log-normal around the vendor's typical level, never just under the
        approval limit (that band is left to the injected split payments)."""
        if self.fixed_amount is not None:
            return self.fixed_amount
        band_low, band_high = float(limit) * 0.88, float(limit)
        value = band_low * 0.9
        for _ in range(20):
            value = self.typical * math.exp(rng.gauss(0.0, self.sigma))
            if self.round_to:
                value = max(round(value / self.round_to), 1) * self.round_to
            if not band_low <= value < band_high and value >= 1:
                break
        else:
            value = band_low * 0.9
        return money(float(value))


def weighted_choice(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    total = sum(weight for _, weight in options)
    roll = rng.random() * total
    for option, weight in options:
        roll -= weight
        if roll < 0:
            return option
    return options[-1][0]


def poisson(rng: random.Random, lam: float) -> int:
    threshold, k, product = math.exp(-lam), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k
