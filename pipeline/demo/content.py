"""Text for the embedded demo: real English prose that ships with every CPython (the language
reference in `pydoc_data`), plus small hand-written pieces that exercise each filter: other
languages, spam, near-duplicates and eval-set overlap."""

from __future__ import annotations

import re
from dataclasses import dataclass

FOREIGN: dict[str, list[str]] = {
    "de": [
        "Die Stadtbibliothek öffnet am Montag nach einer umfangreichen Renovierung wieder ihre Türen. "
        "Besucher finden dort nun einen hellen Lesesaal, mehr Arbeitsplätze für Studierende und eine "
        "erweiterte Abteilung für Kinderbücher. Die Leiterin der Bibliothek erklärte, dass die Sammlung "
        "in den kommenden Jahren vor allem um Sachbücher zur Regionalgeschichte wachsen soll.",
        "Im Herbst beginnt außerdem eine Vortragsreihe über die Geschichte des Buchdrucks in der Region. "
        "Die Veranstaltungen sind kostenlos, eine Anmeldung ist jedoch erforderlich, weil der Saal nur "
        "begrenzt Platz bietet. Weitere Informationen gibt es am Empfang und auf den Aushängen im Foyer.",
    ],
    "fr": [
        "Le marché couvert du centre-ville accueille chaque samedi matin des producteurs venus de toute la "
        "région. On y trouve des fromages affinés, des légumes de saison, du pain cuit au feu de bois et des "
        "fleurs coupées. Les habitants apprécient particulièrement l'ambiance conviviale et les conseils des "
        "marchands, qui connaissent souvent leurs clients depuis de nombreuses années.",
        "La municipalité envisage d'agrandir le bâtiment afin d'accueillir davantage d'exposants pendant "
        "l'hiver. Une consultation publique sera organisée au printemps pour recueillir l'avis des riverains "
        "sur le projet, son calendrier et les éventuelles modifications de la circulation dans le quartier.",
    ],
    "es": [
        "El festival de música de la ciudad celebra este año su vigésima edición con un programa que combina "
        "orquestas sinfónicas, grupos de jazz y jóvenes intérpretes de la escuela municipal. Los conciertos se "
        "celebrarán en plazas y patios históricos, y la mayoría de ellos serán gratuitos para el público.",
        "Los organizadores recomiendan llegar con antelación, porque en las ediciones anteriores muchas "
        "actuaciones se llenaron por completo. También habrá talleres para niños, visitas guiadas por el casco "
        "antiguo y una exposición de fotografías sobre la historia del festival desde su primera edición.",
    ],
}

SPAM_LINES = [
    "BUY CHEAP WATCHES NOW best prices click here",
    "FREE SHIPPING on all orders click here",
    "Limited offer!!! click here click here",
]


@dataclass(frozen=True)
class EvalItem:
    question: str
    answer: str


# A tiny eval set of our own; one item is planted in a web page and one in a Wikipedia article, so the
# decontamination stage has something real to find.
EVAL_ITEMS = [
    EvalItem(
        "A baker has three trays with twelve rolls on each tray and sells twenty rolls before noon. How many rolls "
        "are left for the afternoon customers?",
        "Three trays of twelve rolls make thirty six rolls, and thirty six minus twenty leaves sixteen rolls.",
    ),
    EvalItem(
        "To keep a wooden cutting board from cracking after washing it, what should you do before storing it in "
        "the kitchen cupboard?",
        "Dry it standing on its edge and rub a thin coat of food safe mineral oil into the wood.",
    ),
    EvalItem(
        "Which planet in our solar system has the shortest year, and roughly how many Earth days does one orbit "
        "of the sun take for that planet?",
        "Mercury has the shortest year, completing one orbit of the sun in about eighty eight Earth days.",
    ),
]


def prose_paragraphs() -> list[tuple[str, str]]:
    """(topic, paragraph) pairs of running prose from the Python language reference."""
    from pydoc_data.topics import topics

    out = []
    for topic in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[topic]):
            if block.startswith((" ", "\t")) or "::=" in block or block.lstrip().startswith(("*", "=", "-")):
                continue
            para = " ".join(block.split())
            if len(para.split()) >= 25 and not re.search(r"[*=]{4,}", para):
                out.append((topic, para))
    return out


def articles(paras_per_article: int = 4) -> list[tuple[str, list[str]]]:
    """Consecutive paragraphs of one topic grouped into articles: (title, paragraphs)."""
    by_topic: dict[str, list[str]] = {}
    for topic, para in prose_paragraphs():
        by_topic.setdefault(topic, []).append(para)
    result = []
    for topic in sorted(by_topic):
        paras = by_topic[topic]
        for i in range(0, len(paras), paras_per_article):
            chunk = paras[i : i + paras_per_article]
            if sum(len(p.split()) for p in chunk) >= 150:
                title = topic.replace("-", " ").title() + (f" (part {i // paras_per_article + 1})" if i else "")
                result.append((title, chunk))
    return result


def near_duplicate(paragraphs: list[str]) -> list[str]:
    """The same article as republished elsewhere: a few words changed, the rest verbatim."""
    edited = []
    for p in paragraphs:
        words = p.split()
        for j in range(7, len(words), 41):
            words[j] = words[j].upper() if words[j].islower() else words[j].lower()
        edited.append(" ".join(words))
    return edited


def spam_text(n: int) -> str:
    return "\n".join(SPAM_LINES[i % len(SPAM_LINES)] for i in range(n))
