// Package partner holds what posbridge keeps per partner system
// (docs/partners.md): its Profile (the kind of system, how it names SKUs,
// its places and endpoints), which the configuration translates into and
// the partner commands take, and the SKU cross reference that maps our
// item/SKU to a partner's own code, loaded from the partner's listing
// (xref load), and listed and edited by the xref commands.
package partner
