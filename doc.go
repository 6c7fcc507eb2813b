// Package cachekit is the core of a caching toolkit for Go services.
package cachekit
