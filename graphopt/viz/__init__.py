"""Drawing graphs: DOT text, SVG/PNG/PDF through Graphviz, and an SVG view for notebooks."""

from .dot import KIND_COLORS, TYPE_COLORS, GraphView, render, to_dot, to_svg

__all__ = ["KIND_COLORS", "TYPE_COLORS", "GraphView", "render", "to_dot", "to_svg"]
