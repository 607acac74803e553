"""A fixed set of real English sentences for calibrating and checking sentence encoders.

Thirty-two sentences on varied topics (science, cooking, sport, finance, travel, health,
technology, history, nature, everyday life), written for prunekit. Several come in
paraphrase pairs so a check can ask that pruning keeps related sentences closer than
unrelated ones: see :data:`PARAPHRASE_PAIRS`.
"""

from __future__ import annotations

__all__ = ["PARAPHRASE_PAIRS", "REFERENCE_SENTENCES"]

REFERENCE_SENTENCES: tuple[str, ...] = (
    "The cat slept on the warm windowsill all afternoon.",
    "A kitten dozed in the sunny window for hours.",
    "Interest rates rose again after the central bank's meeting.",
    "The central bank raised borrowing costs for the second time this year.",
    "She added a pinch of salt to the boiling pasta water.",
    "Season the water with salt before you cook the spaghetti.",
    "The striker scored twice in the final ten minutes of the match.",
    "Two late goals from the forward won the game.",
    "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
    "Plants use light to make glucose from CO2 and water.",
    "Our flight to Lisbon was delayed by three hours because of fog.",
    "Heavy fog held up the plane to Portugal's capital for three hours.",
    "Regular exercise lowers the risk of heart disease.",
    "Staying physically active is good for your cardiovascular health.",
    "The new phone's battery lasts almost two days on a single charge.",
    "This smartphone can run for nearly forty-eight hours before it needs charging.",
    "The Roman Empire split into eastern and western halves in 395 AD.",
    "Glaciers in the Alps have lost much of their ice over the last century.",
    "He forgot his umbrella and got soaked on the way to work.",
    "The compiler reported a type error on line forty-two.",
    "Volunteers planted two hundred oak trees along the river bank.",
    "The museum's new exhibition features paintings by Dutch masters.",
    "Please turn off the lights when you leave the room.",
    "The orchestra tuned their instruments before the concert began.",
    "A sudden thunderstorm cancelled the outdoor wedding reception.",
    "Quantum computers use qubits that can be in superposition.",
    "The bakery on the corner sells fresh bread every morning at seven.",
    "Honeybees communicate the location of flowers with a waggle dance.",
    "The library extended its opening hours during the exam period.",
    "Electric cars are becoming cheaper to buy and to run.",
    "My grandmother taught me how to knit a scarf last winter.",
    "The train was so crowded that we had to stand the whole way.",
)
"""Thirty-two sentences; pairs ``(0, 1), (2, 3), ..., (14, 15)`` are paraphrases."""

PARAPHRASE_PAIRS: tuple[tuple[int, int], ...] = tuple((i, i + 1) for i in range(0, 16, 2))
"""Index pairs of :data:`REFERENCE_SENTENCES` that say the same thing in other words."""
