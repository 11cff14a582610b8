from __future__ import annotations

import annotate
from annotate.classify import classify
from annotate.segment import segment


def test_every_exported_name_resolves() -> None:
    assert annotate.__all__ == sorted(annotate.__all__)
    for name in annotate.__all__:
        assert getattr(annotate, name) is not None


def test_public_api_round_trip() -> None:
    sentences = segment(annotate.Article(article_id="x", text="The NMPA approved it. Investors cheered."))
    classified = list(classify(sentences, model=annotate.load_model()))
    (digest,) = annotate.digests(classified)
    assert digest.sentences == 2 and [c.label for c in digest.categories] == list(annotate.LABELS)
