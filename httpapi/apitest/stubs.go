package apitest

import "testing"

func testLimits(t *testing.T, fresh func(*testing.T) *api)      {}
func testUnicode(t *testing.T, fresh func(*testing.T) *api)     {}
func testHostile(t *testing.T, fresh func(*testing.T) *api)     {}
func testConcurrency(t *testing.T, fresh func(*testing.T) *api) {}
func testOperations(t *testing.T, fresh func(*testing.T) *api)  {}
