"""Experiment: does an off-the-shelf ranking beat the guide matcher's own n-gram scoring?

    python bench/bench_ranking.py     # needs `pip install rank-bm25 scikit-learn` (not deps)

Compared on the answerable messages of the tuning file's FIT and DEV splits (dev = every third
case, bench/bench_matcher.py) and on dev's part 5 (the former held-out set):

- `matcher`: bot.services.explanations.Matcher as shipped;
- `bm25`: rank-bm25's BM25Okapi, one document per guide (keywords and title, plus the answer
  and steps once), terms = accent-aware word n-grams: every folded 1-3-gram, and the accented
  form of each as a second term, so a syllable typed with accents matches twice;
- `tfidf`: scikit-learn TF-IDF over character 2-5-grams (within word boundaries) of the folded
  text plus the accented text, cosine similarity;
- `matcher+bm25`, `matcher+tfidf`: the matcher's score plus w × the other score scaled to the
  matcher's best (w chosen on FIT).

Figures: top-1 (the right guide ranked first), top-3, and "direct": answered at once and right
when the best score clears a margin over the runner-up, the margin chosen on FIT for each ranker
(a wrong direct answer costs two right ones, as in bench_matcher's --tune).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rank_bm25 import BM25Okapi  # noqa: E402
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402

from bench.bench_matcher import cases  # noqa: E402
from bot.services.explanations import _JINJA, Matcher, load_library  # noqa: E402
from bot.services.vietnamese import Token  # noqa: E402

Ranker = Callable[[str], list[tuple[str, float]]]


def terms(tokens: Sequence[Token], is_stop: Callable[[Token], bool], n_max: int = 3) -> list[str]:
    out: list[str] = []
    for n in range(1, n_max + 1):
        for i in range(len(tokens) - n + 1):
            window = tokens[i : i + n]
            if all(is_stop(t) for t in window):
                continue
            out.append("f:" + "_".join(t.folded for t in window))
            if any(t.accented for t in window):
                out.append("a:" + "_".join(t.text for t in window))
    return out


def main() -> None:
    library = load_library("vi")
    matcher = Matcher(library)
    keys = sorted(library.topics)
    is_stop = library.words.is_stopword
    docs_terms, docs_text = [], []
    for key in keys:
        topic = library.topics[key]
        body = _JINJA.sub(" ", " ".join((topic.answer, *topic.steps)))
        phrases = [*topic.keywords, _JINJA.sub(" ", topic.title)]
        toks: list[str] = []
        for phrase in phrases:
            toks += terms(matcher.reader.tokens(phrase, correct=False), is_stop)
        for sentence in re.split(r"[.,:;!?()•“”\n]", body):
            toks += terms(matcher.reader.tokens(sentence, correct=False), is_stop)
        docs_terms.append(toks)
        text = " . ".join(phrases) + " . " + body
        docs_text.append(text)
    bm25 = BM25Okapi(docs_terms)

    def prep(text: str) -> str:
        toks = matcher.tokens(text)
        return " ".join(t.folded for t in toks) + " " + " ".join(t.text for t in toks)

    tfidf = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    doc_matrix = tfidf.fit_transform([prep(t) for t in docs_text])

    def rank_matcher(text: str) -> list[tuple[str, float]]:
        return [(m.topic.key, m.score) for m in matcher.scores(text)]

    def rank_bm25(text: str) -> list[tuple[str, float]]:
        scores = bm25.get_scores(terms(matcher.tokens(text), is_stop))
        return sorted(((k, float(s)) for k, s in zip(keys, scores, strict=True) if s > 0),
                      key=lambda p: (-p[1], p[0]))

    def rank_tfidf(text: str) -> list[tuple[str, float]]:
        sims = (doc_matrix @ tfidf.transform([prep(text)]).T).toarray().ravel()
        return sorted(((k, float(s)) for k, s in zip(keys, sims, strict=True) if s > 0),
                      key=lambda p: (-p[1], p[0]))

    def hybrid(other: Ranker, weight: float) -> Ranker:
        def rank(text: str) -> list[tuple[str, float]]:
            base = dict(rank_matcher(text))
            extra = dict(other(text))
            top_base = max(base.values(), default=0.0) or 1.0
            top_extra = max(extra.values(), default=0.0) or 1.0
            merged = {k: base.get(k, 0.0) + weight * top_base * extra.get(k, 0.0) / top_extra
                      for k in set(base) | set(extra)}
            return sorted(merged.items(), key=lambda p: (-p[1], p[0]))
        return rank

    parts = {name: [c for c in cases(name) if "topic" in c]
             for name in ("fit", "dev", "dev, part 5")}

    def figures(rank: Ranker, items: list[dict[str, str]],
                margin: float) -> tuple[int, int, int, int]:
        top1 = top3 = direct = wrong = 0
        for case in items:
            found = rank(case["q"])
            got = [k for k, _ in found]
            top1 += bool(got) and got[0] == case["topic"]
            top3 += case["topic"] in got[:3]
            if found and (len(found) == 1 or found[1][1] <= found[0][1] * margin):
                if got[0] == case["topic"]:
                    direct += 1
                else:
                    wrong += 1
        return top1, top3, direct, wrong

    rankers: dict[str, Ranker] = {"matcher": rank_matcher, "bm25": rank_bm25, "tfidf": rank_tfidf}
    for name, other in (("bm25", rank_bm25), ("tfidf", rank_tfidf)):
        best_w, best_top1 = 0.0, -1
        for w in (0.2, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0):
            top1 = figures(hybrid(other, w), parts["fit"], 1.0)[0]
            if top1 > best_top1:
                best_w, best_top1 = w, top1
        rankers[f"matcher+{name} (w={best_w})"] = hybrid(other, best_w)

    print(f"{'ranker':28} {'part':12} {'top-1':>8} {'top-3':>8} {'direct':>8} {'wrong':>6}"
          f"  margin  ms/msg")
    for name, rank in rankers.items():
        best_margin, best_key = 1.0, -10**9
        for margin in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
            _, _, direct, wrong = figures(rank, parts["fit"], margin)
            if direct - 2 * wrong > best_key:
                best_margin, best_key = margin, direct - 2 * wrong
        for part, items in parts.items():
            started = time.perf_counter()
            top1, top3, direct, wrong = figures(rank, items, best_margin)
            ms = (time.perf_counter() - started) * 1000 / len(items)
            n = len(items)
            print(f"{name:28} {part:12} {top1 / n:8.1%} {top3 / n:8.1%} {direct / n:8.1%} "
                  f"{wrong / n:6.1%}  {best_margin:5.2f}  {ms:5.2f}")


if __name__ == "__main__":
    main()
