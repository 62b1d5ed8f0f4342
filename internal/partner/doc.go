// Package partner holds what posbridge keeps per partner system
// (docs/partners.md): the SKU cross reference that maps our item/SKU to a
// partner's own code, loaded from the partner's listing (xref load), and
// listed and edited by the xref commands.
package partner
