"""Shape arithmetic for editing and exporting ROIs, in source pixels (pixel
centres at integers, so an image of `cols` columns spans -0.5 .. cols - 0.5)."""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from mammodesk.annotations.model import Circle, Ellipse, Point, Polygon, Rect, Shape

Bounds = tuple[int, int]  # (rows, cols)


def snap(value: float) -> float:
    """To the half-pixel grid: pixel centres (integers) and pixel edges (halves)."""
    return round(value * 2.0) / 2.0


def clamp_point(x: float, y: float, bounds: Bounds) -> tuple[float, float]:
    """Snap a point to the image: the half-pixel grid, pixel edges are the limits."""
    rows, cols = bounds
    return min(max(snap(x), -0.5), cols - 0.5), min(max(snap(y), -0.5), rows - 0.5)


def translate(shape: Shape, dx: float, dy: float) -> Shape:
    if isinstance(shape, Point):
        return Point(shape.x + dx, shape.y + dy)
    if isinstance(shape, Circle):
        return Circle(shape.cx + dx, shape.cy + dy, shape.radius)
    if isinstance(shape, Rect):
        return Rect(shape.x0 + dx, shape.y0 + dy, shape.x1 + dx, shape.y1 + dy)
    if isinstance(shape, Ellipse):
        return dataclasses.replace(shape, cx=shape.cx + dx, cy=shape.cy + dy)
    if isinstance(shape, Polygon):
        return Polygon(tuple((x + dx, y + dy) for x, y in shape.points))
    raise TypeError(f"cannot move a {type(shape).__name__}")


def move_within(shape: Shape, dx: float, dy: float, bounds: Bounds) -> Shape:
    """Translate, then push back so the shape's box stays on the image when it fits
    (a circle's centre always stays on it: MIAS circles may overhang the edge)."""
    moved = translate(shape, snap(dx), snap(dy))  # whole half-pixels: a snapped shape stays snapped
    rows, cols = bounds
    if isinstance(moved, Circle):
        cx, cy = clamp_point(moved.cx, moved.cy, bounds)
        return Circle(cx, cy, moved.radius)
    x0, y0, x1, y1 = moved.bbox()
    shift_x = _push(x0, x1, -0.5, cols - 0.5)
    shift_y = _push(y0, y1, -0.5, rows - 0.5)
    return translate(moved, shift_x, shift_y) if shift_x or shift_y else moved


def _push(low: float, high: float, lower: float, upper: float) -> float:
    if high - low > upper - lower:
        return 0.0
    if low < lower:
        return lower - low
    if high > upper:
        return upper - high
    return 0.0


def handles(shape: Shape) -> list[tuple[str, float, float]]:
    """Named drag handles: corners/edges of a box, axis ends of an ellipse,
    the rim of a circle, the vertices of a polygon. A point has none."""
    if isinstance(shape, Rect):
        x0, y0, x1, y1 = shape.x0, shape.y0, shape.x1, shape.y1
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
        return [("x0y0", x0, y0), ("x1y0", x1, y0), ("x0y1", x0, y1), ("x1y1", x1, y1),
                ("x0", x0, ym), ("x1", x1, ym), ("y0", xm, y0), ("y1", xm, y1)]
    if isinstance(shape, Circle):
        return [("r", shape.cx + shape.radius, shape.cy)]
    if isinstance(shape, Ellipse):
        t = math.radians(shape.angle_deg)
        ux, uy, vx, vy = math.cos(t), math.sin(t), -math.sin(t), math.cos(t)
        return [("rx+", shape.cx + shape.rx * ux, shape.cy + shape.rx * uy),
                ("rx-", shape.cx - shape.rx * ux, shape.cy - shape.rx * uy),
                ("ry+", shape.cx + shape.ry * vx, shape.cy + shape.ry * vy),
                ("ry-", shape.cx - shape.ry * vx, shape.cy - shape.ry * vy)]
    if isinstance(shape, Polygon):
        return [(f"v{i}", x, y) for i, (x, y) in enumerate(shape.points)]
    return []


def drag_handle(shape: Shape, name: str, x: float, y: float, bounds: Bounds) -> Shape:
    """The shape with handle `name` moved to (x, y), snapped to the image."""
    x, y = clamp_point(x, y, bounds)
    if isinstance(shape, Rect):
        values = {"x0": shape.x0, "y0": shape.y0, "x1": shape.x1, "y1": shape.y1}
        for part in {name[:2], name[2:]} - {""}:
            values[part] = x if part[0] == "x" else y
        return Rect(**values)
    if isinstance(shape, Circle):
        return Circle(shape.cx, shape.cy, max(0.5, snap(math.hypot(x - shape.cx, y - shape.cy))))
    if isinstance(shape, Ellipse):
        t = math.radians(shape.angle_deg)
        dx, dy = x - shape.cx, y - shape.cy
        along = abs(dx * math.cos(t) + dy * math.sin(t))
        across = abs(-dx * math.sin(t) + dy * math.cos(t))
        if name.startswith("rx"):
            return dataclasses.replace(shape, rx=max(0.5, along))
        return dataclasses.replace(shape, ry=max(0.5, across))
    if isinstance(shape, Polygon) and name.startswith("v"):
        index = int(name[1:])
        points = list(shape.points)
        points[index] = (x, y)
        return Polygon(tuple(points))
    raise ValueError(f"{type(shape).__name__} has no handle {name!r}")


def insert_vertex(polygon: Polygon, x: float, y: float) -> Polygon:
    """Add a vertex on the edge nearest to (x, y)."""
    points = polygon.points
    best, best_distance = 0, math.inf
    for i, (a, b) in enumerate(zip(points, points[1:] + points[:1])):
        distance = _segment_distance((x, y), a, b)
        if distance < best_distance:
            best, best_distance = i, distance
    return Polygon(points[:best + 1] + ((x, y),) + points[best + 1:])


def delete_vertex(polygon: Polygon, index: int) -> Polygon:
    if len(polygon.points) <= 3:
        raise ValueError("a polygon keeps at least three vertices")
    return Polygon(polygon.points[:index] + polygon.points[index + 1:])


def _segment_distance(p, a, b) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / length))
    return math.hypot(p[0] - ax - t * dx, p[1] - ay - t * dy)


def edge_distance(shape: Shape, x: float, y: float) -> float:
    """Distance from (x, y) to the shape's outline (for picking thin shapes)."""
    if isinstance(shape, Point):
        return math.hypot(x - shape.x, y - shape.y)
    if isinstance(shape, Circle):
        return abs(math.hypot(x - shape.cx, y - shape.cy) - shape.radius)
    points = outline(shape)
    return min(_segment_distance((x, y), a, b) for a, b in zip(points, points[1:] + points[:1]))


def outline(shape: Shape, segments: int = 72) -> tuple[tuple[float, float], ...]:
    """The outline as a closed polygon (first vertex not repeated)."""
    if isinstance(shape, Polygon):
        return shape.points
    if isinstance(shape, Rect):
        x0, y0, x1, y1 = shape.bbox()
        return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    if isinstance(shape, (Circle, Ellipse)):
        cx, cy = (shape.cx, shape.cy)
        rx, ry, angle = (shape.radius, shape.radius, 0.0) if isinstance(shape, Circle) else \
            (shape.rx, shape.ry, shape.angle_deg)
        t = math.radians(angle)
        angles = np.linspace(0, 2 * math.pi, segments, endpoint=False)
        u, v = rx * np.cos(angles), ry * np.sin(angles)
        xs = cx + u * math.cos(t) - v * math.sin(t)
        ys = cy + u * math.sin(t) + v * math.cos(t)
        return tuple(zip(xs.tolist(), ys.tolist()))
    if isinstance(shape, Point):
        return ((shape.x, shape.y),)
    raise TypeError(f"{type(shape).__name__} has no outline")


def area(shape: Shape) -> float:
    if isinstance(shape, Point):
        return 0.0
    if isinstance(shape, Circle):
        return math.pi * shape.radius ** 2
    if isinstance(shape, Ellipse):
        return math.pi * shape.rx * shape.ry
    points = np.asarray(outline(shape))
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def enclosing_circle(shape: Shape) -> Circle:
    """The smallest circle around the shape (MIAS describes every finding by one)."""
    if isinstance(shape, Circle):
        return shape
    if isinstance(shape, Point):
        return Circle(shape.x, shape.y, 0.0)
    (cx, cy), radius = cv2.minEnclosingCircle(np.asarray(outline(shape, 180), np.float32))
    return Circle(float(cx), float(cy), float(radius))


def simplify(points: list[tuple[float, float]], tolerance: float) -> tuple[tuple[float, float], ...]:
    """A freehand trace with the points that carry its shape (Douglas-Peucker)."""
    if len(points) < 4:
        return tuple(points)
    curve = np.asarray(points, np.float32).reshape(-1, 1, 2)
    kept = cv2.approxPolyDP(curve, max(tolerance, 0.1), closed=True).reshape(-1, 2)
    return tuple((float(x), float(y)) for x, y in kept)


def rect_from_polygon(points) -> Rect | None:
    """An axis-aligned four-corner outline read back as the box it is."""
    pts = [tuple(p) for p in points]
    if len(pts) == 5 and pts[0] == pts[-1]:
        pts = pts[:4]
    if len(pts) != 4:
        return None
    xs, ys = sorted({p[0] for p in pts}), sorted({p[1] for p in pts})
    if len(xs) != 2 or len(ys) != 2 or {(x, y) for x in xs for y in ys} != set(pts):
        return None
    return Rect(xs[0], ys[0], xs[1], ys[1])
