"""Language codes: one canonical code per language across every data set.

The data sets name languages differently (XQuAD `de`, Tatoeba `deu`, MKQA `zh_cn`).
hbnb uses ISO 639-1 where it exists and ISO 639-3 otherwise, so that "German" is
`de` in training parameters, Tatoeba results and MKQA results alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from hbnb.errors import UnknownNameError

# canonical code -> (English name, aliases used by upstream files)
_LANGUAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "af": ("Afrikaans", ("afr",)),
    "am": ("Amharic", ("amh",)),
    "ang": ("Old English", ()),
    "ar": ("Arabic", ("ara",)),
    "arq": ("Algerian Arabic", ()),
    "arz": ("Egyptian Arabic", ()),
    "ast": ("Asturian", ()),
    "awa": ("Awadhi", ()),
    "az": ("Azerbaijani", ("aze",)),
    "be": ("Belarusian", ("bel",)),
    "ber": ("Berber", ()),
    "bg": ("Bulgarian", ("bul",)),
    "bn": ("Bengali", ("ben",)),
    "br": ("Breton", ("bre",)),
    "bs": ("Bosnian", ("bos",)),
    "ca": ("Catalan", ("cat",)),
    "cbk": ("Chavacano", ()),
    "ceb": ("Cebuano", ()),
    "ch": ("Chamorro", ("cha",)),
    "cs": ("Czech", ("ces",)),
    "kw": ("Cornish", ("cor",)),
    "csb": ("Kashubian", ()),
    "cy": ("Welsh", ("cym",)),
    "da": ("Danish", ("dan",)),
    "de": ("German", ("deu",)),
    "dsb": ("Lower Sorbian", ()),
    "dtp": ("Central Dusun", ()),
    "el": ("Greek", ("ell",)),
    "en": ("English", ("eng",)),
    "eo": ("Esperanto", ("epo",)),
    "es": ("Spanish", ("spa",)),
    "et": ("Estonian", ("est",)),
    "eu": ("Basque", ("eus",)),
    "fa": ("Persian", ("pes", "fas")),
    "fi": ("Finnish", ("fin",)),
    "fo": ("Faroese", ("fao",)),
    "fr": ("French", ("fra",)),
    "fy": ("Western Frisian", ("fry",)),
    "ga": ("Irish", ("gle",)),
    "gd": ("Scottish Gaelic", ("gla",)),
    "gl": ("Galician", ("glg",)),
    "gsw": ("Swiss German", ()),
    "he": ("Hebrew", ("heb",)),
    "hi": ("Hindi", ("hin",)),
    "hr": ("Croatian", ("hrv",)),
    "hsb": ("Upper Sorbian", ()),
    "hu": ("Hungarian", ("hun",)),
    "hy": ("Armenian", ("hye",)),
    "ia": ("Interlingua", ("ina",)),
    "id": ("Indonesian", ("ind",)),
    "ie": ("Interlingue", ("ile",)),
    "io": ("Ido", ("ido",)),
    "is": ("Icelandic", ("isl",)),
    "it": ("Italian", ("ita",)),
    "ja": ("Japanese", ("jpn",)),
    "jv": ("Javanese", ("jav",)),
    "ka": ("Georgian", ("kat",)),
    "kab": ("Kabyle", ()),
    "kk": ("Kazakh", ("kaz",)),
    "km": ("Khmer", ("khm",)),
    "ko": ("Korean", ("kor",)),
    "ku": ("Kurdish", ("kur",)),
    "kzj": ("Coastal Kadazan", ()),
    "la": ("Latin", ("lat",)),
    "lfn": ("Lingua Franca Nova", ()),
    "lt": ("Lithuanian", ("lit",)),
    "liv": ("Livonian", ()),
    "lv": ("Latvian", ("lvs", "lav")),
    "max": ("North Moluccan Malay", ()),
    "mhr": ("Eastern Mari", ()),
    "mk": ("Macedonian", ("mkd",)),
    "ml": ("Malayalam", ("mal",)),
    "mn": ("Mongolian", ("mon",)),
    "mr": ("Marathi", ("mar",)),
    "ms": ("Malay", ("zsm", "msa")),
    "nb": ("Norwegian Bokmål", ("nob",)),
    "nds": ("Low German", ()),
    "nl": ("Dutch", ("nld",)),
    "nn": ("Norwegian Nynorsk", ("nno",)),
    "nov": ("Novial", ()),
    "oc": ("Occitan", ("oci",)),
    "orv": ("Old Russian", ()),
    "pam": ("Pampanga", ()),
    "pl": ("Polish", ("pol",)),
    "pms": ("Piedmontese", ()),
    "pt": ("Portuguese", ("por",)),
    "ro": ("Romanian", ("ron",)),
    "ru": ("Russian", ("rus",)),
    "sah": ("Yakut", ()),
    "sk": ("Slovak", ("slk",)),
    "sl": ("Slovenian", ("slv",)),
    "sq": ("Albanian", ("sqi",)),
    "sr": ("Serbian", ("srp",)),
    "sv": ("Swedish", ("swe",)),
    "sw": ("Swahili", ("swh", "swa")),
    "swg": ("Swabian", ()),
    "ta": ("Tamil", ("tam",)),
    "te": ("Telugu", ("tel",)),
    "th": ("Thai", ("tha",)),
    "tk": ("Turkmen", ("tuk",)),
    "tl": ("Tagalog", ("tgl",)),
    "tr": ("Turkish", ("tur",)),
    "tt": ("Tatar", ("tat",)),
    "tzl": ("Talossan", ()),
    "ug": ("Uyghur", ("uig",)),
    "uk": ("Ukrainian", ("ukr",)),
    "ur": ("Urdu", ("urd",)),
    "uz": ("Uzbek", ("uzb",)),
    "vi": ("Vietnamese", ("vie",)),
    "war": ("Waray", ()),
    "wuu": ("Wu Chinese", ()),
    "xh": ("Xhosa", ("xho",)),
    "yi": ("Yiddish", ("yid",)),
    "yo": ("Yoruba", ("yor",)),
    "yue": ("Cantonese", ()),
    "zh": ("Chinese", ("cmn", "zho", "zh_cn", "zh-cn", "zh-hans")),
}

# The paper's training languages (XQuAD minus el and vi, with en), in the paper's order.
PAPER_TRAINING_LANGUAGES = ("ar", "zh", "en", "de", "hi", "ru", "es", "th", "tr")

_ALIASES: dict[str, str] = {alias: code for code, (_, aliases) in _LANGUAGES.items() for alias in (code, *aliases)}


def canonical(code: str) -> str:
    """The canonical hbnb code for an upstream or user-given language code.

    Raises UnknownNameError for a code hbnb does not know, naming the code.
    """
    key = code.strip().lower().replace("-", "_") if isinstance(code, str) else code
    try:
        return _ALIASES[key]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown language code {code!r}: use an ISO 639-1 code such as 'de' or an "
            f"ISO 639-3 code such as 'deu' (hbnb.languages.known() lists all {len(_LANGUAGES)})"
        ) from None


def name(code: str) -> str:
    """English name of a language, for tables and plots."""
    return _LANGUAGES[canonical(code)][0]


def known() -> list[str]:
    """All canonical codes hbnb knows."""
    return sorted(_LANGUAGES)


def check_subset(requested: Iterable[str], available: Iterable[str], what: str) -> list[str]:
    """Canonicalise `requested` and check each is in `available`; keep the requested order.

    The error names the data set (`what`), the offending code and the allowed ones.
    """
    allowed = list(available)
    out: list[str] = []
    for code in requested:
        try:
            c = canonical(code)
        except UnknownNameError:
            c = None
        if c not in allowed:
            raise UnknownNameError(f"language {code!r} is not in {what}; available: {', '.join(allowed)}")
        if c not in out:
            out.append(c)
    return out
