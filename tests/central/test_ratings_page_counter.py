"""The /ratings page when the only ratings are the counter panel's 1-5 key (as in `edge demo`):
those rows carry a ticket and no comment, and the page must still render them."""

from __future__ import annotations

import urllib.error

import pytest

from .conftest import wait_until


def test_ratings_page_lists_a_counter_rating_without_a_comment(central_app, devices):
    office = central_app()
    device = devices("hn", "desk-01")
    device.event("pager", "rating", counter="2", queue="ho-tich", score=4, ticket="A017")
    wait_until(lambda: office.get("/api/ratings?site=hn"), what="the counter rating stored")
    response, page = office.get("/ratings", raw=True)     # was a 500: the template read r.comment
    text = page.decode()
    assert response.status == 200 and "A017" in text and "Bàn phím tại quầy" in text


@pytest.mark.parametrize("query", ["from=99999999999999999999", "to=99999999999999999999", "from=9999999999999"])
def test_api_ratings_refuses_a_date_out_of_range_with_a_400(central_app, query):
    office = central_app()
    with pytest.raises(urllib.error.HTTPError) as refused:      # was a 500: PostgreSQL's timestamp out of range
        office.get(f"/api/ratings?{query}")
    name = query.split("=")[0]
    assert refused.value.code == 400 and f"{name} must be" in refused.value.read().decode()
