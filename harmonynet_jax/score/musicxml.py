"""MusicXML 4.0 writing and validation against the XSD shipped by the `musicxml` package.

The XSD imports the W3C xml.xsd and xlink.xsd by URL; validation must work offline and the
package ships neither (its xml.xsd is an unrelated helper without the XML namespace), so the
few attributes MusicXML takes from them (xml:lang, xml:space and six XLink attributes) are
declared by the two small schemas below and the imports are pointed at them.
"""

from __future__ import annotations

import functools
import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from music21 import stream

XSD_NAME = "musicxml_4_0.xsd"
REMOTE_XSD = "http://www.musicxml.org/xsd/"  # where the XSD says its imports live
XML_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="http://www.w3.org/XML/1998/namespace" xml:lang="en">
  <xs:attribute name="lang" type="xs:language"/>
  <xs:attribute name="space">
    <xs:simpleType><xs:restriction base="xs:NCName">
      <xs:enumeration value="default"/><xs:enumeration value="preserve"/>
    </xs:restriction></xs:simpleType>
  </xs:attribute>
</xs:schema>
"""
XLINK_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="http://www.w3.org/1999/xlink" attributeFormDefault="qualified">
  <xs:attribute name="href" type="xs:anyURI"/>
  <xs:attribute name="type" type="xs:token"/>
  <xs:attribute name="role" type="xs:token"/>
  <xs:attribute name="title" type="xs:string"/>
  <xs:attribute name="show">
    <xs:simpleType><xs:restriction base="xs:token">
      <xs:enumeration value="new"/><xs:enumeration value="replace"/>
      <xs:enumeration value="embed"/><xs:enumeration value="other"/>
      <xs:enumeration value="none"/>
    </xs:restriction></xs:simpleType>
  </xs:attribute>
  <xs:attribute name="actuate">
    <xs:simpleType><xs:restriction base="xs:token">
      <xs:enumeration value="onRequest"/><xs:enumeration value="onLoad"/>
      <xs:enumeration value="other"/><xs:enumeration value="none"/>
    </xs:restriction></xs:simpleType>
  </xs:attribute>
</xs:schema>
"""


def write_musicxml(score: stream.Score, path: str | Path) -> Path:
    """Write MusicXML (music21 emits version 4.0); returns the path written.

    music21 fills two header fields on its own: a composer named after itself
    (`music21.defaults.author`) when the score names none, and a movement title repeating
    the work title. LilyPond printed both ("Music21" as the composer, the title again as a
    subtitle), so they are left out.
    """
    from lxml import etree
    from music21 import defaults
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = etree.fromstring(GeneralObjectExporter(score).parse(), etree.XMLParser(
        load_dtd=False, no_network=True, resolve_entities=False))
    composer = score.metadata.composer if score.metadata is not None else None
    if not composer:
        for creator in root.findall("identification/creator[@type='composer']"):
            if (creator.text or "") == defaults.author:
                creator.getparent().remove(creator)
    movement, work = root.find("movement-title"), root.find("work/work-title")
    if movement is not None and work is not None and movement.text == work.text:
        root.remove(movement)
    # the tree keeps music21's DOCTYPE
    path.write_bytes(etree.tostring(root.getroottree(), xml_declaration=True, encoding="utf-8"))
    return path


def schema_dir() -> Path:
    """Folder of the MusicXML 4.0 XSD inside the installed `musicxml` package."""
    spec = importlib.util.find_spec("musicxml")
    if spec is None or spec.origin is None:
        raise RuntimeError("the 'musicxml' package (MusicXML 4.0 XSD) is not installed")
    return Path(spec.origin).parent / "generate_classes"


@functools.cache
def _schema() -> Any:
    """The compiled XSD, its two imports pointed at local files (no network)."""
    from lxml import etree

    folder = schema_dir()
    work = Path(tempfile.mkdtemp(prefix="musicxml-xsd-"))
    (work / "xlink.xsd").write_bytes(XLINK_XSD)
    (work / "xml.xsd").write_bytes(XML_XSD)
    text = (folder / XSD_NAME).read_text(encoding="utf-8")
    for name in ("xml.xsd", "xlink.xsd"):
        text = text.replace(f'schemaLocation="{REMOTE_XSD}{name}"', f'schemaLocation="{name}"')
    (work / XSD_NAME).write_text(text, encoding="utf-8")
    parser = etree.XMLParser(no_network=True)
    return etree.XMLSchema(etree.parse(str(work / XSD_NAME), parser))


def validation_errors(path: str | Path) -> list[str]:
    """XSD violations of a MusicXML file (empty list: valid)."""
    from lxml import etree

    schema = _schema()
    doc = etree.parse(str(path), etree.XMLParser(load_dtd=False, no_network=True,
                                                 resolve_entities=False))
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
