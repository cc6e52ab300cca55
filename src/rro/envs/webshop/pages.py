"""WebShop's pages as its `text` observation mode shows them: the visible texts of upstream's HTML
templates, in order, joined with ` [SEP] ` (whitespace-only texts left out, as in the observations
of the trajectories ETO and IPR train on).

Each page also lists what can be clicked on it: lower-cased button texts and product ASINs, and
option values (as written) mapped to their option group; later entries win, as upstream's dict does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rro.envs.webshop.catalog import Product

SEP = " [SEP] "
BACK_TO_SEARCH, PREV_PAGE, NEXT_PAGE, BUY_NOW = "Back to Search", "< Prev", "Next >", "Buy Now"
SUB_PAGES = ("Description", "Features", "Reviews")
PRODUCT_WINDOW = 10


@dataclass
class Page:
    kind: str  # search | results | item | sub | done
    texts: list[str]
    clickables: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (kind, target)

    @property
    def text(self) -> str:
        return SEP.join(t.strip() for t in self.texts if t.strip())

    def button(self, label: str) -> None:
        self.texts.append(label)
        self.clickables[label.lower()] = ("button", label)


def _instruction(instruction: str) -> list[str]:
    return ["Instruction:", instruction]


def search_page(instruction: str) -> Page:
    page = Page("search", ["WebShop", "Instruction:", instruction])
    page.button("Search")
    return page


def results_page(instruction: str, products: list[Product], page_number: int, total: int) -> Page:
    page = Page("results", _instruction(instruction))
    page.button(BACK_TO_SEARCH)
    page.texts.append(f"Page {page_number} (Total results: {total})")
    if page_number > 1:
        page.button(PREV_PAGE)
    page.button(NEXT_PAGE)  # shown even on the last page, as upstream's template does
    for product in products:
        page.texts.append(product.asin)
        page.clickables[product.asin.lower()] = ("product", product.asin)
        page.texts += [product.title, product.price_tag]
    return page


def item_page(instruction: str, product: Product) -> Page:
    page = Page("item", _instruction(instruction))
    page.button(BACK_TO_SEARCH)
    page.button(PREV_PAGE)
    for name, values in product.options.items():
        page.texts += [name, *values]
    page.texts += [product.title, f"Price: {product.price_tag}", f"Rating: {product.rating}"]
    for sub_page in SUB_PAGES:
        page.button(sub_page)
    page.button(BUY_NOW)
    for name, values in product.options.items():  # after the buttons: upstream adds them last
        page.clickables.update({value: ("option", name) for value in values})
    return page


def sub_page(instruction: str, product: Product, which: str) -> Page:
    page = Page("sub", _instruction(instruction))
    page.button(BACK_TO_SEARCH)
    page.button(PREV_PAGE)
    if which == "Description":
        page.texts.append(product.description)
    elif which == "Features":
        page.texts += product.bullet_points
    else:
        for review in product.reviews:
            page.texts += [f'"{review["title"]}"', str(review["score"]), review["body"]]
    return page


def done_page(reward: float) -> Page:
    return Page("done", ["Thank you for shopping with us!", "Your score (min 0.0, max 1.0)", str(reward)])
