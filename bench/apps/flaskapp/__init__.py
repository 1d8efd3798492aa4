"""A small Flask app: a page rendered from a Jinja template (what the benchmark requests,
GET /page/<name>) and a JSON endpoint (GET /api/items)."""

from flask import Flask, jsonify, render_template, request

app = Flask(__name__)

ITEMS = [{"id": i, "name": f"item {i}", "price": round(i * 1.25, 2)} for i in range(10)]


@app.route("/page/<name>")
def page(name):
    limit = request.args.get("limit", default=len(ITEMS), type=int)
    return render_template("page.html", name=name, items=ITEMS[:limit])


@app.route("/api/items")
def items():
    return jsonify(items=ITEMS, count=len(ITEMS))
