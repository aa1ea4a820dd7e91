#!/usr/bin/env python3
"""Renders printable ASCII (32..126) of DejaVu Sans Mono into an 8-bit coverage atlas
for recur's PNG charts: crates/recur/src/plot/font.bin, glyphs of WIDTH x HEIGHT bytes
in code order. Run once; the output is committed (no font is needed at build time).
DejaVu fonts: Bitstream Vera / DejaVu licence, free to embed; notice in plot/FONT-LICENSE.
    python3 tools/make_font.py /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf
"""
import sys
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT, SIZE = 8, 16, 13
font = ImageFont.truetype(sys.argv[1], SIZE)
out = bytearray()
for code in range(32, 127):
    img = Image.new("L", (WIDTH, HEIGHT), 0)
    ImageDraw.Draw(img).text((0, -2), chr(code), fill=255, font=font)
    out += img.tobytes()
open("crates/recur/src/plot/font.bin", "wb").write(out)
print("wrote", len(out), "bytes")
