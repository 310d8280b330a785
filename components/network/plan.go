package network

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
)

// Tier is a subnet tier.
type Tier string

// Subnet tiers: public subnets route to an internet gateway, private ones to
// NAT (when any), isolated ones nowhere outside the VPC.
const (
	Public   Tier = "public"
	Private  Tier = "private"
	Isolated Tier = "isolated"
)

// Subnet is one planned subnet.
type Subnet struct {
	Tier Tier
	AZ   string
	CIDR netip.Prefix
}

// Sizes are subnet prefix lengths per tier; zero means automatic.
type Sizes struct {
	Public, Private, Isolated int
}

// Plan splits cidr into one subnet per availability zone and enabled tier.
// Automatic sizes give private subnets half of the block and public and
// isolated ones an eighth each; subnets are allocated in order, aligned, so
// they never overlap. It fails when cidr is malformed or too small.
func Plan(cidr string, azs []string, tiers []Tier, sizes Sizes) ([]Subnet, error) {
	block, err := netip.ParsePrefix(cidr)
	if err != nil || !block.Addr().Is4() {
		return nil, fmt.Errorf("network: Args.CIDR %q is not an IPv4 CIDR block; use e.g. \"10.0.0.0/16\"", cidr)
	}
	if block.Masked() != block {
		return nil, fmt.Errorf("network: Args.CIDR %q has host bits set; use %s", cidr, block.Masked())
	}
	if block.Bits() < 16 || block.Bits() > 24 {
		return nil, fmt.Errorf("network: Args.CIDR %q must be between /16 and /24 (AWS allows /16-/28 and subnets need room); use e.g. \"10.0.0.0/16\"", cidr)
	}
	if len(azs) == 0 {
		return nil, errors.New("network: no availability zones; set Args.AZCount (1-6) or Args.AvailabilityZones")
	}
	// b bits address one AZ's share of a tier.
	b := bits.Len(uint(len(azs) - 1))
	auto := map[Tier]int{Private: block.Bits() + b + 1, Public: block.Bits() + b + 3, Isolated: block.Bits() + b + 3}
	explicit := map[Tier]int{Public: sizes.Public, Private: sizes.Private, Isolated: sizes.Isolated}
	next := block.Addr()
	end := lastAddr(block)
	var out []Subnet
	for _, t := range tiers {
		size := auto[t]
		if explicit[t] != 0 {
			size = explicit[t]
			if size <= block.Bits() || size > 28 {
				return nil, fmt.Errorf("network: Args.SubnetSizes.%s /%d must be longer than the VPC's /%d and at most /28", title(t), size, block.Bits())
			}
		}
		if size > 28 {
			return nil, fmt.Errorf("network: Args.CIDR %q is too small for %d AZs × %d tiers (a %s subnet would be /%d, AWS needs /28 or larger); use /%d or larger",
				cidr, len(azs), len(tiers), t, size, max(16, block.Bits()-(size-28)))
		}
		for _, az := range azs {
			p, ok := alignUp(next, size)
			if !ok || !block.Contains(p.Addr()) || !block.Contains(lastAddr(p)) || lastAddr(p).Compare(end) > 0 {
				return nil, fmt.Errorf("network: subnets do not fit in Args.CIDR %q: %d AZs × %d tiers at the requested sizes need more room; use a larger block or smaller Args.SubnetSizes",
					cidr, len(azs), len(tiers))
			}
			out = append(out, Subnet{Tier: t, AZ: az, CIDR: p})
			n := lastAddr(p).Next()
			if !n.IsValid() {
				next = netip.Addr{}
			} else {
				next = n
			}
		}
	}
	return out, Overlaps(out)
}

// Overlaps returns an error naming the first two subnets that overlap.
func Overlaps(subnets []Subnet) error {
	for i := range subnets {
		for j := i + 1; j < len(subnets); j++ {
			if subnets[i].CIDR.Overlaps(subnets[j].CIDR) {
				return fmt.Errorf("network: subnet %s (%s, %s) overlaps %s (%s, %s); give each subnet its own range",
					subnets[i].CIDR, subnets[i].Tier, subnets[i].AZ, subnets[j].CIDR, subnets[j].Tier, subnets[j].AZ)
			}
		}
	}
	return nil
}

func title(t Tier) string {
	if t == "" {
		return ""
	}
	return string(t[0]-'a'+'A') + string(t[1:])
}

// alignUp returns the first prefix of the given length at or after a.
func alignUp(a netip.Addr, length int) (netip.Prefix, bool) {
	if !a.IsValid() {
		return netip.Prefix{}, false
	}
	p, err := a.Prefix(length)
	if err != nil {
		return netip.Prefix{}, false
	}
	if p.Addr() == a {
		return p, true
	}
	n := lastAddr(p).Next()
	if !n.IsValid() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(n, length), true
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
